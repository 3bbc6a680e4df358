"""Load: 200 requests from 50 users through the limits gate, exactly as the bots send them.

Real Redis, the real gate, intake, queue and two in-process arq separation workers; only the
model is a stand-in that costs nothing (tests/support/fast_model.py), so the queue, the limits
and the bookkeeping are what is under load. Every request ends in exactly one final DONE event
on its reply stream, or in a LimitReached with its exact message; none is lost.

The groups (active_jobs 1, jobs_per_hour 5, queue_cap 1000, admins' overrides per scope):

- A, 20 users, 2 at once while the workers are stopped: one queued each (positions 0..19 in
  the order they were queued), one "already in progress"; later 2 more each in a chat where
  an admin allows 1 song an hour: "1 song an hour".
- B, 20 users, 2 at once in a chat whose queue cap is 10, while 20 wait: "queue is full";
  later 2 more each while the workers run: one done, one "already in progress".
- C, 10 banned users, 4 at once: "banned".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool

from shared import events, jobs, limits
from shared.config import Settings
from shared.core import Accepted, Core, Requester, Upload
from shared.gate import LimitReached
from shared.intake import build_options
from shared.redis_server import PrivateRedis
from shared.schemas import JobState, LocalReply, ProgressEvent
from shared.storage import LocalStorage, build_storage
from tests.support.audio import make_audio
from tests.support.fast_model import write_fast_repo
from tests.support.waiting import until
from worker.main import build_worker

FULL, STRICT = "test:chat:full", "test:chat:strict"
ACTIVE = "You already have a song in progress; wait for it to finish or cancel it."
BUSY = "The queue is full right now. Try again in about 11 min."  # (20 - 10 + 1) runs x 60 s
BANNED = "You are banned from using this bot."


@dataclass
class Sent:
    user: str
    stream: str
    submitted: Accepted | None = None
    refused: LimitReached | None = None

    @property
    def outcome(self) -> str:
        return self.refused.code if self.refused else "queued"


@dataclass
class Load:
    settings: Settings
    redis: ArqRedis
    storage: LocalStorage
    core: Core
    song: bytes
    workers: list[Worker]
    sent: int = 0

    def variant(self) -> bytes:
        """The song with a few samples changed: other bytes, so every request is its own job."""
        self.sent += 1
        data = bytearray(self.song)
        data[4000:4004] = self.sent.to_bytes(4, "little")
        return bytes(data)

    async def send(self, user: str, scope: str | None = None) -> Sent:
        """What a bot does with one song: admit, then submit under the ticket."""
        sent = Sent(user, f"load:events:{uuid.uuid4().hex}")
        data = self.variant()

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        try:
            sent.submitted = await self.core.request(
                Requester("test", user, scope=scope),
                Upload(chunks(), f"{user}.wav"),
                build_options(self.settings, fmt="wav"),
                LocalReply(frontend="test"),
                reply_to=sent.stream,
            )
        except LimitReached as exc:
            sent.refused = exc
        return sent

    async def stream(self, name: str) -> list[ProgressEvent]:
        return [events.decode_entry(f) for _, f in await self.redis.xrange(name)]

    async def final(self, sent: Sent, within: float = 50) -> ProgressEvent:
        async def first_final() -> ProgressEvent | None:
            return next((e for e in await self.stream(sent.stream) if e.state.final), None)

        # dozens of these wait at once: each looks every 50 ms
        what = f"the final event on {sent.stream}"
        return await until(first_final, timeout_s=within, what=what, every_s=0.05)


@pytest.fixture
async def load(redis_server: PrivateRedis, tmp_path: Path) -> AsyncIterator[Load]:
    settings = Settings(
        redis_url=redis_server.url,
        queue_name=f"load:queue:{uuid.uuid4().hex[:8]}",
        download_queue_name=f"load:download:{uuid.uuid4().hex[:8]}",
        storage_dir=tmp_path / "storage",
        model_repo=write_fast_repo(tmp_path / "models"),
        device="cpu",
        torch_threads=1,
        shifts=0,
        signing_key="load-test-signing-key-not-a-secret",
        active_jobs=1,
        jobs_per_hour=5,
        queue_cap=1000,
        daily_minutes=0,
    )
    redis = await create_pool(RedisSettings.from_dsn(redis_server.url))
    await redis.flushall()
    pools = [await create_pool(RedisSettings.from_dsn(redis_server.url)) for _ in range(2)]
    workers = [
        build_worker(settings, pool, handle_signals=False, progress_interval_s=0.2)
        for pool in pools
    ]
    song = make_audio(tmp_path / "song.wav", seconds=1.0).read_bytes()
    storage = build_storage(settings)
    yield Load(settings, redis, storage, Core(redis, storage, settings), song, workers)
    for w in workers:
        await w.close()
    await redis.aclose()


async def settled(load: Load) -> None:
    """The jobs the workers are on have returned: their final events are out, their users'
    slots given back (shared.usage, right after the event), arq's bookkeeping done."""
    running = [t for w in load.workers for t in w.tasks.values()]
    if running:
        await asyncio.wait(running, timeout=30)


@contextlib.asynccontextmanager
async def working(load: Load) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.async_run()) for w in load.workers]
    try:
        yield
        await settled(load)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def gather(*coros: object) -> list[Sent]:
    return list(await asyncio.gather(*coros))  # type: ignore[call-overload]


@pytest.mark.timeout(180)
async def test_200_requests_from_50_users(load: Load) -> None:
    started = time.monotonic()
    redis, queue = load.redis, load.settings.redis.queue_name
    a = [f"test:a{i}" for i in range(20)]
    b = [f"test:b{i}" for i in range(20)]
    c = [f"test:c{i}" for i in range(10)]
    await limits.set_limit(redis, FULL, "queue_cap", "10", "test:admin")
    await limits.set_limit(redis, STRICT, "jobs_per_hour", "1", "test:admin")
    for user in c:
        await limits.ban(redis, user, "test:admin", "spam")

    # workers stopped: A fills the queue while the banned try, then B meets a full queue
    first = await gather(
        *(load.send(u) for u in a for _ in range(2)), *(load.send(u) for u in c * 4)
    )
    full = await gather(*(load.send(u, FULL) for u in b for _ in range(2)))
    queued = [s for s in first if s.submitted]
    assert Counter(s.outcome for s in first) == {
        "queued": 20,
        "limit_active": 20,
        "limit_banned": 40,
    }
    assert Counter(s.outcome for s in full) == {"limit_busy": 40}
    assert sorted(s.user for s in queued) == sorted(a)  # one each

    # positions at submission: 0..19, in the order the runs were queued, ETAs to match
    scores = {}
    for s in queued:
        assert s.submitted is not None and s.submitted.outcome == "queued"
        arq_id = (await redis.hget(jobs.job_key(s.submitted.first.job_id), "arq_id")).decode()
        scores[arq_id] = (await redis.zscore(queue, arq_id), s.submitted.first)
    in_line = [sub for _, sub in sorted(scores.values(), key=lambda pair: pair[0])]
    assert [sub.position for sub in in_line] == list(range(20))
    assert [sub.eta_s for sub in in_line] == [60.0 * (p + 1) for p in range(20)]

    async with working(load):
        done = await asyncio.gather(*(load.final(s) for s in queued))
        await settled(load)
        # workers running: A may start 1 an hour in the strict chat, B sends 2 more each
        later = await gather(
            *(load.send(u, STRICT) for u in a for _ in range(2)),
            *(load.send(u) for u in b for _ in range(2)),
        )
        queued_later = [s for s in later if s.submitted]
        done += await asyncio.gather(*(load.final(s) for s in queued_later))
    elapsed = time.monotonic() - started

    assert Counter(s.outcome for s in later) == {
        "limit_hourly": 40,
        "queued": 20,
        "limit_active": 20,
    }
    assert sorted(s.user for s in queued_later) == sorted(b)
    assert [e.state for e in done] == [JobState.DONE] * 40

    everything = first + full + later
    assert len(everything) == 200 and len({s.stream for s in everything}) == 200
    for sent in everything:
        stream = await load.stream(sent.stream)
        if sent.refused is not None:
            assert stream == []  # a refusal is an answer, not a job
            assert sent.refused.user_message == expected_message(sent.refused), sent.refused
            continue
        finals = [e for e in stream if e.state.final]
        assert [e.state for e in finals] == [JobState.DONE]
        assert stream[-1] is finals[-1] and finals[0].result is not None
        # every "queued" event has a place in the line, never a later one than before
        told = [e.position for e in stream if e.state == JobState.QUEUED]
        assert None not in told, told
        assert told == sorted(told, reverse=True), told  # type: ignore[type-var]

    # the limits held per user, and every slot was given back
    for user in a + b + c:
        assert await redis.zcard(limits.active_key(user)) == 0
        assert await redis.zcard(limits.window_key(user)) == (0 if user in c else 1)
    # none lost, nothing left behind
    assert await redis.zcard(queue) == 0
    assert await redis.zcard(load.settings.redis.download_queue_name) == 0
    assert [k async for k in redis.scan_iter(match="stembot:job:*:requests")] == []
    storage = load.settings.storage.storage_dir
    assert list((storage / "uploads").iterdir()) == []
    assert list((storage / "tmp").iterdir()) == []
    print(f"\n200 requests, 40 separations: {elapsed:.1f}s")


def expected_message(refused: LimitReached) -> str:
    if refused.code == "limit_hourly":
        retry = refused.retry_after_s or 0
        assert 3000 < retry <= 3600
        return f"You can start 1 song an hour. Try again in {limits.format_duration(retry)}."
    return {"limit_active": ACTIVE, "limit_busy": BUSY, "limit_banned": BANNED}[refused.code]
