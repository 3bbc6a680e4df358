"""The submit core against a real Redis: enqueue, join, reuse, places in the queue, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import arq.utils
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix

from shared import jobs, keys, places
from shared.events import decode_entry
from shared.redis_server import PrivateRedis
from shared.schemas import (
    AudioFormat,
    JobOptions,
    JobRequest,
    JobResult,
    JobState,
    Source,
    StemFile,
)

QUEUE = "test:queue"


@pytest.fixture
async def arq_redis(redis_server: PrivateRedis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_server.url))
    await pool.flushall()
    yield pool
    await pool.aclose()


def make_request(identity: str = "a" * 64, user: str = "u1", **options: object) -> JobRequest:
    return JobRequest(
        frontend="test",
        user_id=f"test:{user}",
        reply_to=f"stream:{user}",
        source=Source(kind="upload", identity=identity, title="Song", storage_key="uploads/x"),
        options=JobOptions(**options),  # type: ignore[arg-type]
    )


def make_result(key: str, expires_in: float = 3600) -> JobResult:
    stem = StemFile(name="vocals", filename="vocals.mp3", size_bytes=1, url="http://x/v")
    now = time.time()
    return JobResult(
        key=key,
        title="Song",
        model="htdemucs",
        stems_mode="all",
        format=AudioFormat.MP3,
        duration_s=1.0,
        stems=[stem],
        zip=stem,
        created_at=now,
        expires_at=now + expires_in,
    )


async def test_first_request_is_queued_with_position(arq_redis: ArqRedis) -> None:
    first = await jobs.submit(arq_redis, make_request(), queue_name=QUEUE)
    second = await jobs.submit(arq_redis, make_request("b" * 64, user="u2"), queue_name=QUEUE)
    assert (first.outcome, first.position) == ("queued", 0)
    assert (second.outcome, second.position) == ("queued", 1)
    assert second.eta_s == pytest.approx(2 * jobs.DEFAULT_JOB_S)
    assert await arq_redis.zcard(QUEUE) == 2


async def test_runs_submitted_in_one_millisecond_keep_their_order(
    arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that stands still: every submission lands in the same millisecond.
    now = time.time()
    monkeypatch.setattr(arq.utils, "time", lambda: now)
    monkeypatch.setattr(jobs, "time", SimpleNamespace(time=lambda: now))
    submitted = [
        await jobs.submit(arq_redis, make_request(f"{i:064x}", user=f"u{i}"), queue_name=QUEUE)
        for i in range(20)
    ]
    assert [s.position for s in submitted] == list(range(20))
    # The order the queue holds is the order arq's workers take jobs in (lowest score first).
    taken = [i.decode().split(".")[0] for i in await arq_redis.zrange(QUEUE, 0, -1)]
    assert taken == [s.job_id for s in submitted]


async def test_same_song_and_options_joins_the_run(arq_redis: ArqRedis) -> None:
    first = await jobs.submit(arq_redis, make_request(user="u1"), queue_name=QUEUE)
    second = await jobs.submit(arq_redis, make_request(user="u2"), queue_name=QUEUE)
    assert first.outcome == "queued"
    assert second.outcome == "joined"
    assert second.job_id == first.job_id
    assert await arq_redis.zcard(QUEUE) == 1
    waiting = await jobs.waiting_requests(arq_redis, first.job_id)
    assert {r.user_id for r in waiting} == {"test:u1", "test:u2"}


async def test_other_options_are_another_job(arq_redis: ArqRedis) -> None:
    first = await jobs.submit(arq_redis, make_request(), queue_name=QUEUE)
    other = await jobs.submit(arq_redis, make_request(stems="vocals"), queue_name=QUEUE)
    assert other.outcome == "queued"
    assert other.job_id != first.job_id


async def test_concurrent_identical_requests_queue_one_run(arq_redis: ArqRedis) -> None:
    requests = [make_request(user=f"u{i}") for i in range(20)]
    results = await asyncio.gather(*(jobs.submit(arq_redis, r, queue_name=QUEUE) for r in requests))
    assert sorted(r.outcome for r in results).count("queued") == 1
    assert await arq_redis.zcard(QUEUE) == 1
    assert len(await jobs.waiting_requests(arq_redis, results[0].job_id)) == 20


async def test_finished_result_is_reused_while_valid(arq_redis: ArqRedis) -> None:
    req = make_request()
    queued = await jobs.submit(arq_redis, req, queue_name=QUEUE)
    arq_id = (await arq_redis.hget(jobs.job_key(req.key), "arq_id")).decode()
    result = make_result(req.key)
    waiting = await jobs.finish(arq_redis, req.key, arq_id, JobState.DONE, result=result)
    assert [r.request_id for r in waiting] == [req.request_id]

    again = await jobs.submit(arq_redis, make_request(user="u9"), queue_name=QUEUE)
    assert again.outcome == "cached"
    assert again.result == result
    assert again.job_id == queued.job_id
    ttl = await arq_redis.pttl(jobs.result_key(req.key))
    assert 3500_000 < ttl <= 3600_000


async def test_expiring_result_is_not_reused(arq_redis: ArqRedis) -> None:
    req = make_request()
    await jobs.submit(arq_redis, req, queue_name=QUEUE)
    arq_id = (await arq_redis.hget(jobs.job_key(req.key), "arq_id")).decode()
    await jobs.finish(arq_redis, req.key, arq_id, JobState.DONE, result=make_result(req.key, 30))
    again = await jobs.submit(arq_redis, make_request(user="u2"), queue_name=QUEUE)
    assert again.outcome == "queued"


async def test_request_after_failure_starts_a_new_run(arq_redis: ArqRedis) -> None:
    req = make_request()
    await jobs.submit(arq_redis, req, queue_name=QUEUE)
    first_id = (await arq_redis.hget(jobs.job_key(req.key), "arq_id")).decode()
    await jobs.finish(arq_redis, req.key, first_id, JobState.FAILED, error_code="unreadable")
    again = await jobs.submit(arq_redis, make_request(user="u2"), queue_name=QUEUE)
    second_id = (await arq_redis.hget(jobs.job_key(req.key), "arq_id")).decode()
    assert again.outcome == "queued"
    assert second_id != first_id
    # a late finish of the old run must not touch the new one
    assert await jobs.finish(arq_redis, req.key, first_id, JobState.FAILED) == []
    assert (await arq_redis.hget(jobs.job_key(req.key), "state")).decode() == "queued"


async def test_positions_skip_running_jobs(arq_redis: ArqRedis) -> None:
    reqs = [make_request(c * 64, user=c) for c in "abc"]
    for r in reqs:
        await jobs.submit(arq_redis, r, queue_name=QUEUE)
    ids = [(await arq_redis.hget(jobs.job_key(r.key), "arq_id")).decode() for r in reqs]
    await arq_redis.set(in_progress_key_prefix + ids[0], b"1")
    assert await jobs.queue_position(arq_redis, ids[0], queue_name=QUEUE) == (None, None)
    # jobs enqueued in the same millisecond run in arq's (lexical) order: so do positions
    order = [i.decode() for i in await arq_redis.zrange(QUEUE, 0, -1) if i.decode() != ids[0]]
    pos, eta = await jobs.queue_position(arq_redis, ids[2], queue_name=QUEUE)
    assert pos == order.index(ids[2])
    assert eta == pytest.approx((pos + 1) * jobs.DEFAULT_JOB_S)

    assert await jobs.running_count(arq_redis, QUEUE) == 1
    # nothing was published to the waiting requests: their places are read where shown
    assert [await arq_redis.xlen(f"stream:{c}") for c in "abc"] == [0, 0, 0]


async def test_places_of_waiting_requests_in_one_read(arq_redis: ArqRedis) -> None:
    """A bot process reads the places of the requests it shows, in both queues, at once."""
    registry, dl_queue = "test:waiting", "test:download"
    reqs = [make_request(c * 64, user=c) for c in "abcd"]
    for r in reqs[:3]:
        await jobs.submit(arq_redis, r, queue_name=QUEUE)
    youtube = reqs[3].model_copy(
        update={"source": Source(kind="youtube", identity="dQw4w9WgXcQ", title="Video")}
    )
    await jobs.submit(arq_redis, youtube, queue_name=QUEUE, download_queue=dl_queue)
    ids = [(await arq_redis.hget(jobs.job_key(r.key), "arq_id")).decode() for r in reqs[:3]]
    await arq_redis.set(in_progress_key_prefix + ids[0], b"1")  # a worker runs the first
    await jobs.set_state(arq_redis, reqs[0].key, ids[0], JobState.SEPARATING, 10.0)
    mine = [reqs[0], reqs[1], youtube]
    await arq_redis.hset(registry, mapping={r.request_id: "bot-a" for r in mine})
    await arq_redis.hset(registry, reqs[2].request_id, "bot-b")  # shown by another process
    order = [i.decode() for i in await arq_redis.zrange(QUEUE, 0, -1) if i.decode() != ids[0]]

    found = await places.places(
        arq_redis,
        [(r.request_id, r.key) for r in [*mine, reqs[2]]],
        registry=registry,
        owner="bot-a",
        queue_name=QUEUE,
        download_queue=dl_queue,
    )

    position = order.index(ids[1])
    assert found.waiting == {
        reqs[1].request_id: (position, (position + 1) * jobs.DEFAULT_JOB_S),
        youtube.request_id: (0, jobs.DEFAULT_JOB_S),  # first in the download queue
    }
    assert (found.gone, found.elsewhere) == ([reqs[0].request_id], [reqs[2].request_id])
    assert abs(found.read_ms / 1000 - time.time()) < 5  # Redis' clock
    # the running one left the registry; the others stay with their process
    assert await arq_redis.hgetall(registry) == {
        reqs[1].request_id.encode(): b"bot-a",
        youtube.request_id.encode(): b"bot-a",
        reqs[2].request_id.encode(): b"bot-b",
    }
    # where a run put in the queue now would stand: after the two waiting
    assert await places.next_place(arq_redis, QUEUE) == (2, 3 * jobs.DEFAULT_JOB_S)


async def test_a_render_waits_with_a_renders_eta(arq_redis: ArqRedis) -> None:
    """A run made from a kept master (a custom mix here) waits in the download queue for
    seconds of work, not a separation's minute: its place gets the renders' average, in the
    first answer and in a bot's read; a YouTube download there keeps the separations'."""
    registry, dl_queue = "test:waiting:render", "test:download:render"
    await arq_redis.delete(keys.JOB_SECONDS, keys.RENDER_SECONDS)
    song = make_request("e" * 64, user="e")
    mix = song.model_copy(update={"options": song.options.model_copy(update={"mix": ("drums",)})})
    youtube = make_request(user="f").model_copy(
        update={"source": Source(kind="youtube", identity="aaaaaaaaaaa", title="Video")}
    )
    first = await jobs.submit(arq_redis, mix, queue_name=QUEUE, download_queue=dl_queue)
    assert (first.position, first.eta_s) == (0, places.DEFAULT_RENDER_S)
    await jobs.submit(arq_redis, youtube, queue_name=QUEUE, download_queue=dl_queue)
    # the worker keeps the renders' average apart from the separations'
    await jobs.record_job_time(arq_redis, 4.0, render=True)
    assert await arq_redis.get(keys.RENDER_SECONDS) == b"8.20"  # 0.7 * 10 + 0.3 * 4
    assert await arq_redis.get(keys.JOB_SECONDS) is None
    await arq_redis.set(keys.RENDER_SECONDS, "4.00")
    await arq_redis.set(keys.JOB_SECONDS, "80.00")
    await arq_redis.hset(registry, mapping={r.request_id: "bot-a" for r in (mix, youtube)})
    found = await places.places(
        arq_redis,
        [(r.request_id, r.key) for r in (mix, youtube)],
        registry=registry,
        owner="bot-a",
        queue_name=QUEUE,
        download_queue=dl_queue,
    )
    assert found.waiting == {mix.request_id: (0, 4.0), youtube.request_id: (1, 160.0)}
    # a second request for the same mix joins it, with the same kind of ETA
    joined = await jobs.submit(
        arq_redis,
        mix.model_copy(update={"request_id": "r" * 32, "user_id": "g"}),
        queue_name=QUEUE,
        download_queue=dl_queue,
    )
    assert (joined.outcome, joined.position, joined.eta_s) == ("joined", 0, 4.0)
    await arq_redis.delete(keys.JOB_SECONDS, keys.RENDER_SECONDS)


async def test_cancel_one_of_two_keeps_the_run(arq_redis: ArqRedis) -> None:
    a, b = make_request(user="a"), make_request(user="b")
    await jobs.submit(arq_redis, a, queue_name=QUEUE)
    await jobs.submit(arq_redis, b, queue_name=QUEUE)
    assert await jobs.cancel_request(arq_redis, a) is True
    assert await jobs.cancel_request(arq_redis, a) is False
    assert await arq_redis.zcard(abort_jobs_ss) == 0
    event = decode_entry((await arq_redis.xrange("stream:a"))[-1][1])
    assert event.state == JobState.CANCELLED
    assert event.error_message == "Cancelled. Nothing was kept."


async def test_cancel_last_request_aborts_the_run(arq_redis: ArqRedis) -> None:
    a = make_request(user="a")
    await jobs.submit(arq_redis, a, queue_name=QUEUE)
    arq_id = (await arq_redis.hget(jobs.job_key(a.key), "arq_id")).decode()
    assert await jobs.cancel_request(arq_redis, a) is True
    assert await arq_redis.zscore(abort_jobs_ss, arq_id) is not None
    assert (await arq_redis.hget(jobs.job_key(a.key), "state")).decode() == "cancelled"
    again = await jobs.submit(arq_redis, make_request(user="b"), queue_name=QUEUE)
    assert again.outcome == "queued"
