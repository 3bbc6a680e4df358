"""Per-day stats against a real Redis, fed through the real final-event path (jobs.notify)."""

from __future__ import annotations

import calendar

import pytest
from redis.asyncio import Redis

from shared import jobs, stats
from shared.schemas import (
    AudioFormat,
    DiscordReply,
    JobOptions,
    JobRequest,
    JobResult,
    JobState,
    LimitTicket,
    ProgressEvent,
    Source,
    StemFile,
)

# 2025-03-10 23:59:30 UTC, 30 s before the next UTC day.
T0 = float(calendar.timegm((2025, 3, 10, 23, 59, 30)))
DAY = 86400
GUILD = "discord:guild:7"


def request(user: str = "discord:1", scope: str = GUILD, identity: str = "a" * 64) -> JobRequest:
    return JobRequest(
        frontend="discord",
        user_id=user,
        reply_to="test:events",
        source=Source(kind="upload", identity=identity, title="Song"),
        options=JobOptions(),
        reply=DiscordReply(channel_id=1, message_id=1, user_id=1, title="Song"),
        ticket=LimitTicket(user_id=user, scope=scope),
    )


def done(req: JobRequest, seconds: float = 90.0, ts: float = T0) -> ProgressEvent:
    stem = StemFile(name="vocals", filename="v.mp3", size_bytes=1, url="http://x/v")
    result = JobResult(
        key=req.key,
        title="Song",
        model="htdemucs",
        stems_mode="all",
        format=AudioFormat.MP3,
        duration_s=seconds,
        stems=[stem],
        zip=stem,
        created_at=ts,
        expires_at=ts + DAY,
    )
    return ProgressEvent(job_id=req.key, request_ids=[], state=JobState.DONE, result=result, ts=ts)


def failed(req: JobRequest, code: str, ts: float = T0) -> ProgressEvent:
    return ProgressEvent(
        job_id=req.key, request_ids=[], state=JobState.FAILED, error_code=code, ts=ts
    )


async def test_each_request_is_counted_once_in_its_day_globally_and_in_its_scope(
    redis: Redis,
) -> None:
    a, b = request("discord:1"), request("discord:2")
    event = done(a)
    await jobs.notify(redis, [a, b], event)  # one run, two users waiting for it
    await jobs.notify(redis, [a, b], event)  # the same final event again
    [today] = await stats.recent(redis, 1, now=T0)
    assert today == stats.Day("2025-03-10", done=2, minutes=3.0)
    assert await stats.recent(redis, 1, GUILD, now=T0) == [today]
    assert await stats.recent(redis, 1, "discord:guild:8", now=T0) == [stats.Day("2025-03-10")]
    ttl = await redis.ttl(stats.day_key(GUILD, "2025-03-10"))
    assert 90 * DAY < ttl <= 91 * DAY


async def test_failures_by_reason_cancelled_and_days(redis: Redis) -> None:
    private = request("telegram:5", scope="")
    await jobs.notify(redis, [private], failed(private, "too_long"))
    second = request("telegram:5", scope="", identity="b" * 64)
    await jobs.notify(redis, [second], failed(second, "internal", ts=T0 + 60))  # next UTC day
    third = request("telegram:6", scope="", identity="c" * 64)
    cancelled = ProgressEvent(job_id=third.key, request_ids=[], state=JobState.CANCELLED, ts=T0)
    await jobs.notify(redis, [third], cancelled)
    await jobs.notify(
        redis, [third], ProgressEvent(job_id="x", request_ids=[], state=JobState.QUEUED)
    )

    days = await stats.recent(redis, 3, now=T0 + 60)
    assert days == [
        stats.Day("2025-03-11", failed=1, failures={"internal": 1}),
        stats.Day("2025-03-10", failed=1, cancelled=1, failures={"too_long": 1}),
        stats.Day("2025-03-09"),
    ]
    assert stats.total(days) == stats.Day(
        "total", failed=2, cancelled=1, failures={"internal": 1, "too_long": 1}
    )
    assert stats.total(days).jobs == 3
    # private chats have no scope: nothing was counted under a "" scope
    assert sorted(await redis.keys(f"{stats.PREFIX}day:*")) == [
        stats.day_key(None, "2025-03-10").encode(),
        stats.day_key(None, "2025-03-11").encode(),
    ]


@pytest.mark.parametrize(("asked", "got"), [(0, 1), (7, 7), (500, stats.KEEP_DAYS)])
async def test_recent_clamps_the_number_of_days(redis: Redis, asked: int, got: int) -> None:
    days = await stats.recent(redis, asked, now=T0)
    assert len(days) == got
    assert days[0].day == "2025-03-10"
    assert days[-1].day == stats.day_of(T0 - (got - 1) * DAY)
