"""The gate every frontend passes: counts, refusals, refunds, and slots given back at the end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import limits, usage
from shared.config import Settings
from shared.core import Accepted, Core, Requester, Upload
from shared.errors import NotAudio
from shared.gate import Gate, LimitReached
from shared.intake import build_options, file_chunks
from shared.schemas import (
    AudioFormat,
    JobRequest,
    JobResult,
    JobState,
    LimitTicket,
    LocalReply,
    ProgressEvent,
    Source,
    StemFile,
)
from tests.support.audio import make_audio
from tests.support.service import Service


def settings_for(**overrides: object) -> Settings:
    return Settings(queue_name="t:queue", download_queue_name="t:download", **overrides)


async def test_a_full_queue_answers_busy_with_a_wait(redis: Redis) -> None:
    gate = Gate(redis, settings_for(queue_cap=3), "test")
    await redis.zadd("t:queue", {"a": 1, "b": 2})
    await redis.zadd("t:download", {"c": 3})  # downloads count: they become separations
    with pytest.raises(LimitReached) as refused:
        await gate.admit("test:ana")
    # one run over the cap, 60 s a run (no history yet), one worker
    assert refused.value.code == "limit_busy"
    assert refused.value.user_message == "The queue is full right now. Try again in about 1 min."
    assert refused.value.retry_after_s == 60.0
    await redis.zrem("t:download", "c")
    ticket = await gate.admit("test:ana")
    assert await redis.zrange(limits.active_key("test:ana"), 0, -1) == [ticket.id.encode()]


async def test_a_burst_cannot_pass_the_queue_cap_before_anything_is_queued(
    redis: Redis,
) -> None:
    gate = Gate(redis, settings_for(queue_cap=10, active_jobs=100, jobs_per_hour=0), "test")

    async def admit(i: int) -> bool:
        try:
            await gate.admit(f"test:user{i}")
        except LimitReached as exc:
            assert exc.code == "limit_busy"
            return False
        return True

    outcomes = await asyncio.gather(*(admit(i) for i in range(100)))
    assert sum(outcomes) == 10
    # once admitted requests are queued (or refused), they stop counting as arriving
    tickets = await redis.zrange(limits.ADMITTING_KEY, 0, -1)
    for rid in tickets[:4]:
        await limits.admitted(redis, rid.decode())
    assert sum(await asyncio.gather(*(admit(i) for i in range(100, 110)))) == 4


async def test_exempt_only_when_the_settings_say_so(redis: Redis) -> None:
    strict = Gate(redis, settings_for(active_jobs=1, admins_exempt=False), "test")
    relaxed = Gate(redis, settings_for(active_jobs=1), "test")
    await relaxed.admit("test:boss", admin=True)
    await relaxed.admit("test:boss", admin=True)  # exempt: a second one at once
    with pytest.raises(LimitReached) as refused:
        await strict.admit("test:boss", admin=True)
    assert refused.value.code == "limit_active"


async def request(service: Service, path: Path) -> Accepted:
    """Ana's upload, through the core as every frontend sends it."""
    return await Core(service.redis, service.storage, service.settings).request(
        Requester("test", "test:ana"),
        Upload(file_chunks(path), path.name),
        service.options(),
        LocalReply(frontend="test"),
        reply_to="t:events",
    )


async def test_a_request_refused_later_counts_for_nothing(service: Service, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all\n" * 200)
    with pytest.raises(NotAudio):
        await request(service, junk)
    for key in (limits.window_key("test:ana"), limits.active_key("test:ana")):
        assert await service.redis.zcard(key) == 0


async def test_slot_given_back_at_the_end_and_at_once_for_a_cached_answer(
    service: Service, tmp_path: Path
) -> None:
    song = make_audio(tmp_path / "song.wav", seconds=1.0)
    first = await request(service, song)
    await service.events_until_final("t:events")
    assert await service.redis.zcard(limits.active_key("test:ana")) == 0
    again = await request(service, song)  # the same song and options: from the cache
    assert again.outcome == "cached" and again.first.result is not None
    assert await service.redis.zcard(limits.active_key("test:ana")) == 0
    assert await service.redis.zcard(limits.window_key("test:ana")) == 2
    minutes = await service.redis.hget(limits.minutes_key("test:ana", time.time()), "total")
    assert float(minutes or 0) == pytest.approx(2 / 60, abs=1e-3)
    jobs_of_ana = await service.redis.smembers(usage.user_jobs_key("test:ana"))
    assert jobs_of_ana == {first.first.job_id.encode()}


def link_request(ticket: LimitTicket) -> JobRequest:
    return JobRequest(
        frontend="test",
        user_id="test:ana",
        reply_to="t:events",
        source=Source(kind="youtube", identity="dQw4w9WgXcQ", title="x", url="https://y"),
        options=build_options(Settings()),
        ticket=ticket,
    )


async def test_a_links_minutes_count_once_when_it_is_done(redis: Redis) -> None:
    gate = Gate(redis, settings_for(), "test")
    ticket = await gate.admit("test:ana")
    request = link_request(ticket)
    stem = StemFile(name="vocals", filename="v.mp3", size_bytes=1, url="http://x")
    result = JobResult(
        key="k",
        title="t",
        model="htdemucs",
        stems_mode="all",
        format=AudioFormat.MP3,
        duration_s=150.0,
        stems=[stem],
        zip=stem,
        created_at=time.time(),
        expires_at=time.time() + 3600,
    )
    done = ProgressEvent(job_id="k", request_ids=[], state=JobState.DONE, result=result)
    for _ in range(2):  # a repeated final event changes nothing
        await usage.on_final(redis, [request], done)
    assert await redis.zcard(limits.active_key("test:ana")) == 0
    total = await redis.hget(limits.minutes_key("test:ana", time.time()), "total")
    assert float(total or 0) == pytest.approx(2.5)
