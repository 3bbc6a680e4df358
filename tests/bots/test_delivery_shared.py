"""bots.delivery with more than one process of a bot: two engines, each on its own Redis
connection under its own consumer name, against one stream; and the places of waiting
requests, read where they are shown.

The recording presenters (tests/bots/test_delivery.py) of both engines write to one log, in
the order the calls happened, so a test sees each status message as its user would.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from bots.delivery import Delivery, Pacer
from shared import jobs, keys
from shared.redis_server import PrivateRedis
from shared.schemas import (
    JobOptions,
    JobRequest,
    JobState,
    ProgressEvent,
    Source,
    TelegramReply,
)
from tests.bots.test_delivery import (
    EDIT_INTERVAL_S,
    PLATFORM,
    STREAM,
    Msg,
    RecordingPresenter,
    event,
    pending,
    publish,
    store_request,
)
from tests.support.streams import settled
from tests.support.waiting import until

QUEUE, DL_QUEUE = "test:queue", "test:download"
SEP = JobState.SEPARATING


class PlacePresenter(RecordingPresenter):
    """Also shows the place of a waiting request: ("progress", id, "queued 2")."""

    def __init__(self, log: PlacePresenter | None = None, who: str = "") -> None:
        super().__init__()
        #: which process showed each progress edit, and each request's message
        self.who = who
        self.by: list[str] = [] if log is None else log.by
        self.editors: dict[str, set[str]] = {} if log is None else log.editors
        if log is not None:  # one log for both processes
            self.calls, self.at = log.calls, log.at

    async def progress(self, target: Msg, event: ProgressEvent, shown: object) -> object:
        text = event.state.value
        if event.state == JobState.QUEUED and event.position is not None:
            text += f" {event.position}"
        elif event.percent is not None:
            text += f" {event.percent:.0f}%"
        if text != shown:
            await self._call("progress", target, text)
            self.by.append(self.who)
            self.editors.setdefault(target.request_id, set()).add(self.who)
        return text


@pytest.fixture
async def connections(redis_server: PrivateRedis, redis: Redis) -> AsyncIterator[list[Any]]:
    """Each engine's own connection (``redis`` flushed the database first)."""
    made: list[Any] = []
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
async def engines(connections: list[Any]) -> AsyncIterator[list[Delivery[Msg]]]:
    started: list[Delivery[Msg]] = []
    yield started
    for engine in started:
        await engine.stop()


@pytest.fixture
def make_engine(
    redis_server: PrivateRedis, connections: list[Any], engines: list[Delivery[Msg]]
) -> Callable[..., Any]:
    async def make(presenter: RecordingPresenter, name: str, **kw: Any) -> Delivery[Msg]:
        own = Redis.from_url(redis_server.url)
        connections.append(own)
        engine: Delivery[Msg] = Delivery(
            own, presenter, Pacer(kw.pop("edit_interval_s", EDIT_INTERVAL_S)), name=name, **kw
        )
        await engine.start()
        engines.append(engine)
        return engine

    return make


async def test_two_processes_deliver_each_event_once_never_backwards_and_each_final_once(
    redis: Redis, make_engine: Callable[..., Any]
) -> None:
    ids = [f"r{i}" for i in range(24)]
    for i, rid in enumerate(ids):
        await store_request(redis, rid, chat=i % 6, message=i)
    log = PlacePresenter()
    await make_engine(PlacePresenter(log, "a"), "host:1")
    await make_engine(PlacePresenter(log, "b"), "host:2")

    # each request: 10%, 20%, ... 90%, then done; requests interleaved at random, in small
    # batches, so both processes read some of each
    rng = random.Random(19)
    steps = {
        rid: [*(event([rid], SEP, p) for p in range(10, 100, 10)), event([rid], JobState.DONE)]
        for rid in ids
    }
    while any(steps.values()):
        batch = [steps[rid].pop(0) for rid in rng.sample(ids, 6) if steps[rid]]
        await publish(redis, *batch)
    await until(lambda: sum(c[0] == "finished" for c in log.calls) == len(ids), what="every end")
    await settled(redis, STREAM)

    for rid in ids:
        mine = [c for c in log.of(rid) if not c[0].endswith("failed")]
        shown = [int(c[2].split()[1][:-1]) for c in mine if c[0] == "progress"]
        assert shown == sorted(set(shown)), (rid, shown)  # never an older state after a newer
        assert mine[len(shown) :] == [
            ("final", rid, "done"),
            ("send", rid, "text"),
            ("send", rid, "file:vocals"),
            ("send", rid, "file:drums"),
            ("finished", rid, ""),
        ], rid
    assert await pending(redis) == 0
    assert set(log.by) == {"a", "b"}, "both processes showed progress"
    assert any(len(who) == 2 for who in log.editors.values()), "one message, two processes"
    consumers = {c["name"].decode() for c in await redis.xinfo_consumers(STREAM, PLATFORM)}
    assert consumers == {"host:1", "host:2"}


async def test_a_process_that_stops_leaves_its_events_to_another(
    redis: Redis, make_engine: Callable[..., Any]
) -> None:
    a_msg = await store_request(redis, "a", chat=1, message=10)
    log = PlacePresenter()
    # the first process shows the first state, then must wait 30 s to edit again
    first = await make_engine(
        PlacePresenter(log, "a"), "host:1", edit_interval_s=30, claim_after_s=0.6
    )
    await first.follow(a_msg, event(["a"], JobState.QUEUED))
    await until(lambda: log.calls, what="the first state")
    await publish(redis, event(["a"], SEP, 40), event(["a"], SEP, 60))

    async def read_by_the_first() -> bool:
        return await pending(redis) == 2

    await until(read_by_the_first, what="the first process to read the events")
    await first.stop()  # it dies with them unacknowledged
    second = await make_engine(PlacePresenter(log, "b"), "host:2", claim_after_s=0.6)
    await until(lambda: len(log.calls) == 2, what="the second process to show them")
    await settled(redis, STREAM)

    assert log.calls == [("progress", "a", "queued"), ("progress", "a", "separating 60%")]
    assert log.by == ["a", "b"]
    assert log.at[1] - log.at[0] >= 0.6  # once idle that long
    assert second.name == "host:2"


async def arq_pool(redis_server: PrivateRedis, connections: list[Any]) -> ArqRedis:
    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    connections.append(pool)
    return pool


async def queue_song(pool: ArqRedis, rid: str, chat: int) -> tuple[Msg, ProgressEvent, str]:
    """A Telegram request queued as the core queues it; (its message, first event, arq id)."""
    request = JobRequest(
        request_id=rid,
        frontend=PLATFORM,
        user_id=f"telegram:{chat}",
        reply_to=STREAM,
        source=Source(kind="upload", identity=rid * 64, title="Song", storage_key="uploads/x"),
        options=JobOptions(),
        reply=TelegramReply(chat_id=chat, message_id=chat * 10, user_id=chat, title="Song"),
    )
    submitted = await jobs.submit(pool, request, queue_name=QUEUE)
    first = ProgressEvent(
        job_id=request.key,
        request_ids=[rid],
        state=JobState.QUEUED,
        position=submitted.position,
        eta_s=submitted.eta_s,
    )
    arq_id = (await pool.hget(jobs.job_key(request.key), "arq_id")).decode()
    return Msg(rid, chat, chat * 10), first, arq_id


async def test_a_waiting_user_sees_the_place_move_coalesced_and_nothing_is_published(
    redis: Redis,
    redis_server: PrivateRedis,
    connections: list[Any],
    make_engine: Callable[..., Any],
) -> None:
    pool = await arq_pool(redis_server, connections)
    songs = [await queue_song(pool, rid, chat) for chat, rid in enumerate("abcde", start=1)]
    log = PlacePresenter()
    engine = await make_engine(
        PlacePresenter(log), "host:1", queues=(QUEUE, DL_QUEUE), place_interval_s=0.1
    )
    msg, first, _ = songs[4]
    await engine.follow(msg, first)
    await until(lambda: log.of("e"), what="the first place")
    assert log.of("e") == [("progress", "e", "queued 4")]

    # three runs start at once (their workers mark them in progress): one step is shown
    for _, _, arq_id in songs[:3]:
        await redis.set(in_progress_key_prefix + arq_id, b"1")
    await until(lambda: len(log.of("e")) == 2, what="the new place")
    # the last one ahead finishes and leaves the queue
    await redis.zrem(QUEUE, songs[3][2])
    await until(lambda: len(log.of("e")) == 3, what="next up")

    assert log.of("e") == [
        ("progress", "e", "queued 4"),
        ("progress", "e", "queued 1"),
        ("progress", "e", "queued 0"),
    ]
    assert await redis.exists(STREAM) == 0 or await redis.xlen(STREAM) == 0
    assert await redis.hgetall(keys.waiting(PLATFORM)) == {b"e": b"host:1"}

    # its run starts: it leaves the registry; the worker's events take over from there
    await redis.set(in_progress_key_prefix + songs[4][2], b"1")
    await jobs.set_state(redis, first.job_id, songs[4][2], JobState.DECODING, None)

    async def unregistered() -> bool:
        return not await redis.hgetall(keys.waiting(PLATFORM))

    await until(unregistered, what="the registry to forget it")


async def test_the_waiting_requests_of_a_stopped_process_are_taken_over(
    redis: Redis,
    redis_server: PrivateRedis,
    connections: list[Any],
    make_engine: Callable[..., Any],
) -> None:
    pool = await arq_pool(redis_server, connections)
    songs = [await queue_song(pool, rid, chat) for chat, rid in enumerate("ab", start=1)]
    log = PlacePresenter()
    places = {"queues": (QUEUE, DL_QUEUE), "place_interval_s": 0.1, "claim_after_s": 0.6}
    first = await make_engine(PlacePresenter(log, "a"), "host:1", **places)
    msg, first_event, _ = songs[1]
    await first.follow(msg, first_event)
    await until(lambda: log.calls, what="the first place")
    await first.stop()

    await make_engine(PlacePresenter(log, "b"), "host:2", **places)
    await redis.set(in_progress_key_prefix + songs[0][2], b"1")  # the run ahead starts
    await until(lambda: len(log.calls) == 2, what="the new place, from the other process")

    assert log.calls == [("progress", "b", "queued 1"), ("progress", "b", "queued 0")]
    assert log.by == ["a", "b"]
    assert await redis.hgetall(keys.waiting(PLATFORM)) == {b"b": b"host:2"}
