"""Limits, bans and overrides against a real Redis; time is passed in, never slept."""

from __future__ import annotations

import asyncio
import calendar
import time
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from shared import limits
from shared.errors import InvalidOption
from shared.limits import Decision, Limits

# 2025-03-10 08:40:00 UTC: 15 h 20 min before the next UTC midnight.
T0 = float(calendar.timegm((2025, 3, 10, 8, 40, 0)))
USER = "telegram:1"
SCOPE = "telegram:chat:-100"


async def take(
    redis: Redis,
    request_id: str,
    lim: Limits | None = None,
    *,
    now: float = T0,
    minutes: float | None = 3.0,
    depth: int = 0,
    user: str = USER,
    **kw: object,
) -> Decision:
    return await limits.acquire(
        redis,
        user_id=user,
        scope=SCOPE,
        request_id=request_id,
        audio_minutes=minutes,
        queue_depth=depth,
        limits=lim or Limits(),
        now=now,
        **kw,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Usage:
    active: int
    last_hour: int
    minutes_today: float


async def usage(redis: Redis, now: float = T0, user: str = USER) -> Usage:
    """What the user has used at ``now``, read straight from the keys."""
    active = await redis.zcount(limits.active_key(user), f"({now!r}", "+inf")
    hour = await redis.zcount(limits.window_key(user), f"({now - limits.WINDOW_S!r}", "+inf")
    total = await redis.hget(limits.minutes_key(user, now), "total")
    return Usage(active, hour, round(float(total or 0), 6))


def test_format_duration() -> None:
    assert limits.format_duration(0) == "1 s"
    assert limits.format_duration(45) == "45 s"
    assert limits.format_duration(59.2) == "1 min"
    assert limits.format_duration(720) == "12 min"
    assert limits.format_duration(721) == "13 min"
    assert limits.format_duration(3600) == "1 h"
    assert limits.format_duration(12000) == "3 h 20 min"


async def test_allowed_records_everything(redis: Redis) -> None:
    assert await take(redis, "r1", minutes=2.5) == Decision(True)
    assert await usage(redis, T0) == Usage(1, 1, 2.5)
    for key in await redis.keys("*"):
        assert key.decode().startswith("stembot:limits:")
        assert 0 < await redis.ttl(key) <= limits.MINUTES_TTL_S


async def test_banned(redis: Redis) -> None:
    await limits.ban(redis, USER, "admin:7", "spam")
    assert await limits.is_banned(redis, USER)
    d = await take(redis, "r1", exempt=True)
    assert d == Decision(False, "banned")
    assert limits.message(d) == "You are banned from using this bot."
    assert await limits.unban(redis, USER, "admin:7")
    assert not await limits.unban(redis, USER, "admin:7")
    assert (await take(redis, "r1")).allowed
    log = await limits.audit_log(redis, 5)
    assert [(e.action, e.key, e.old, e.new) for e in log] == [
        ("unban", USER, "", ""),
        ("unban", USER, "spam", ""),
        ("ban", USER, "", "spam"),
    ]


async def test_scope_ban_only_in_that_scope(redis: Redis) -> None:
    await limits.ban(redis, USER, "admin:7", scope=SCOPE)
    assert await limits.is_banned(redis, USER, SCOPE)
    assert not await limits.is_banned(redis, USER)
    assert (await take(redis, "r1")).reason == "banned"
    other = await limits.acquire(
        redis,
        user_id=USER,
        scope="telegram:chat:5",
        request_id="r2",
        audio_minutes=1,
        queue_depth=0,
        limits=Limits(),
        now=T0,
    )
    assert other.allowed


async def test_busy(redis: Redis) -> None:
    lim = Limits(queue_cap=10)
    d = await take(redis, "r1", lim, depth=12, avg_job_s=60, workers=3)
    assert d == Decision(False, "busy", 60.0, 10, 12)
    assert limits.message(d) == "The queue is full right now. Try again in about 1 min."
    d = await take(redis, "r1", lim, depth=10, busy_retry_s=240)
    assert limits.message(d) == "The queue is full right now. Try again in about 4 min."
    assert (await take(redis, "r1", lim, depth=9)).allowed


async def test_active_and_release(redis: Redis) -> None:
    assert (await take(redis, "r1")).allowed
    d = await take(redis, "r2", now=T0 + 1)
    assert d == Decision(False, "active", None, 1, 1)
    assert limits.message(d) == (
        "You already have a song in progress; wait for it to finish or cancel it."
    )
    assert limits.message(Decision(False, "active", None, 2, 2)) == (
        "You already have 2 songs in progress; wait for one to finish or cancel it."
    )
    assert await limits.release(redis, USER, "r1")
    assert not await limits.release(redis, USER, "r1")
    assert (await take(redis, "r2", now=T0 + 2)).allowed
    # the refused request was not counted
    assert (await usage(redis, T0 + 2)).last_hour == 2


async def test_same_request_again_counts_once(redis: Redis) -> None:
    assert (await take(redis, "r1")).allowed
    assert (await take(redis, "r1")).allowed
    assert await usage(redis, T0) == Usage(1, 1, 3.0)


async def test_stale_active_entry_expires(redis: Redis) -> None:
    assert (await take(redis, "r1")).allowed  # frontend crashed: never released
    assert (await take(redis, "r2", now=T0 + 3600)).reason == "active"
    assert (await take(redis, "r2", now=T0 + limits.ACTIVE_TTL_S)).allowed


async def test_hourly_window_slides(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=5, active_jobs=100, daily_minutes=0)
    for i in range(5):
        assert (await take(redis, f"r{i}", lim, now=T0 + i * 60)).allowed
    d = await take(redis, "r5", lim, now=T0 + 600)
    assert d == Decision(False, "hourly", 3000.0, 5, 5)
    assert limits.message(d) == "You can start 5 songs an hour. Try again in 50 min."
    assert (await take(redis, "r5", lim, now=T0 + 3599)).reason == "hourly"
    # the first one is an hour old: one slot frees, the second one an hour later
    assert (await take(redis, "r5", lim, now=T0 + 3600)).allowed
    d = await take(redis, "r6", lim, now=T0 + 3610)
    assert (d.reason, d.retry_after_s) == ("hourly", 50.0)
    assert limits.message(d) == "You can start 5 songs an hour. Try again in 50 s."
    one = Decision(False, "hourly", 720, 1, 1)
    assert limits.message(one) == "You can start 1 song an hour. Try again in 12 min."


async def test_unlimited_hourly(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=0, active_jobs=100, daily_minutes=0)
    for i in range(20):
        assert (await take(redis, f"r{i}", lim)).allowed


async def test_concurrent_requests_of_one_user(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=5, active_jobs=100)
    decisions = await asyncio.gather(*(take(redis, f"r{i}", lim, minutes=1.0) for i in range(50)))
    assert sum(d.allowed for d in decisions) == 5
    assert {d.reason for d in decisions if not d.allowed} == {"hourly"}
    assert await usage(redis, T0) == Usage(5, 5, 5.0)


async def test_daily_minutes(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=0, active_jobs=100, daily_minutes=60)
    assert (await take(redis, "r1", lim, minutes=50)).allowed
    d = await take(redis, "r2", lim, minutes=15)
    assert d == Decision(False, "daily", 15 * 3600 + 20 * 60, 60, 50.0, 15)
    assert limits.message(d) == (
        "This song is 15 min long, but only 10 min of your 60 minutes of audio for today "
        "are left. Send a shorter song, or try again in 15 h 20 min."
    )
    assert (await take(redis, "r2", lim, minutes=10)).allowed
    d = await take(redis, "r3", lim, minutes=None, now=T0 + 12 * 3600)
    assert (d.reason, d.used, d.retry_after_s) == ("daily", 60.0, 12000.0)
    assert limits.message(d) == (
        "You have used your 60 minutes of audio for today. Try again in 3 h 20 min."
    )
    # a new UTC day starts from zero
    assert (await take(redis, "r3", lim, minutes=59, now=T0 + 16 * 3600)).allowed


async def test_length_known_later(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=0, active_jobs=100, daily_minutes=60)
    assert (await take(redis, "r1", lim, minutes=None)).allowed
    await limits.add_minutes(redis, USER, "r1", 55.5, now=T0 + 30)
    assert await usage(redis, T0) == Usage(1, 1, 55.5)
    assert (await take(redis, "r2", lim, minutes=5)).reason == "daily"
    assert await limits.refund(redis, USER, "r1", now=T0 + 60)
    assert (await take(redis, "r2", lim, minutes=5)).allowed


async def test_refund(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=1, daily_minutes=60)
    assert (await take(redis, "r1", lim, minutes=40)).allowed
    assert await limits.refund(redis, USER, "r1", now=T0 + 5)
    assert not await limits.refund(redis, USER, "r1", now=T0 + 5)
    assert await usage(redis, T0 + 5) == Usage(0, 0, 0.0)
    assert (await take(redis, "r2", lim, minutes=60, now=T0 + 6)).allowed


async def test_refund_after_midnight_hits_the_right_day(redis: Redis) -> None:
    late = float(calendar.timegm((2025, 3, 10, 23, 59, 0)))
    assert (await take(redis, "r1", minutes=30, now=late)).allowed
    assert await limits.refund(redis, USER, "r1", now=late + 120)
    assert (await usage(redis, late)).minutes_today == 0.0


async def test_exempt_skips_limits_but_is_active(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=1, active_jobs=1, daily_minutes=1, queue_cap=1)
    for i in range(3):
        d = await take(redis, f"r{i}", lim, minutes=500, depth=99, exempt=True)
        assert d.allowed
    assert await usage(redis, T0) == Usage(3, 0, 0.0)
    assert (await take(redis, "x", lim)).reason == "active"


async def test_overrides_precedence(redis: Redis) -> None:
    defaults = Limits(jobs_per_hour=7, active_jobs=2)
    assert await limits.effective(redis, defaults, SCOPE) == defaults
    got = await limits.set_limit(redis, None, "jobs_per_hour", "3", "owner:1", defaults=defaults)
    assert got == Limits(jobs_per_hour=3, active_jobs=2)
    await limits.set_limit(redis, None, "active_jobs", "4", "owner:1")
    got = await limits.set_limit(redis, SCOPE, "jobs_per_hour", "10", "admin:2", defaults=defaults)
    assert got == Limits(jobs_per_hour=10, active_jobs=4)
    assert await limits.effective(redis, defaults, "telegram:chat:9") == Limits(
        jobs_per_hour=3, active_jobs=4
    )
    assert await limits.effective(redis, defaults, None) == Limits(jobs_per_hour=3, active_jobs=4)
    assert await limits.overrides(redis, SCOPE) == {"jobs_per_hour": 10}
    got = await limits.reset_limit(redis, None, "jobs_per_hour", "owner:1", defaults=defaults)
    assert got == Limits(jobs_per_hour=7, active_jobs=4)
    got = await limits.reset_limit(redis, SCOPE, "jobs_per_hour", "admin:2", defaults=defaults)
    assert got == Limits(jobs_per_hour=7, active_jobs=4)


async def test_set_limit_audit_entry(redis: Redis) -> None:
    before = time.time()
    await limits.set_limit(redis, SCOPE, "daily_minutes", " 90 ", "discord:42")
    await limits.set_limit(redis, SCOPE, "daily_minutes", "0", "discord:43")
    await limits.reset_limit(redis, SCOPE, "daily_minutes", "discord:44")
    log = await limits.audit_log(redis, 10)
    assert [(e.actor, e.action, e.scope, e.key, e.old, e.new) for e in log] == [
        ("discord:44", "reset", SCOPE, "daily_minutes", "0", ""),
        ("discord:43", "set", SCOPE, "daily_minutes", "90", "0"),
        ("discord:42", "set", SCOPE, "daily_minutes", "", "90"),
    ]
    assert all(before - 0.01 <= e.at <= time.time() + 0.01 for e in log)
    assert len(await limits.audit_log(redis, 2)) == 2


@pytest.mark.parametrize(
    ("key", "raw", "text"),
    [
        (
            "jobs_per_hour",
            "abc",
            "jobs_per_hour must be a whole number from 0 to 1000 (0 = unlimited); got 'abc'.",
        ),
        (
            "jobs_per_hour",
            "2.5",
            "jobs_per_hour must be a whole number from 0 to 1000 (0 = unlimited); got '2.5'.",
        ),
        (
            "daily_minutes",
            "-1",
            "daily_minutes must be a whole number from 0 to 100000 (0 = unlimited); got '-1'.",
        ),
        ("active_jobs", "0", "active_jobs must be a whole number from 1 to 100; got '0'."),
        ("queue_cap", "10001", "queue_cap must be a whole number from 1 to 10000; got '10001'."),
        (
            "speed",
            "1",
            "Unknown limit 'speed'. Known limits: jobs_per_hour, active_jobs, "
            "daily_minutes, queue_cap, mixes_per_hour.",
        ),
    ],
)
async def test_set_limit_validation(redis: Redis, key: str, raw: str, text: str) -> None:
    with pytest.raises(InvalidOption) as err:
        await limits.set_limit(redis, None, key, raw, "owner:1")
    assert err.value.user_message == text
    assert await limits.audit_log(redis, 10) == []
    assert await redis.keys("*") == []


async def test_stored_value_out_of_range_is_ignored(redis: Redis) -> None:
    await redis.hset(limits.overrides_key(None), mapping={"queue_cap": "0", "old_key": "3"})
    assert await limits.effective(redis, Limits(), None) == Limits()


async def test_invalid_scope(redis: Redis) -> None:
    with pytest.raises(ValueError, match="invalid scope"):
        await limits.set_limit(redis, "bad scope", "queue_cap", "5", "owner:1")
    with pytest.raises(ValueError, match="invalid scope"):
        await limits.effective(redis, Limits(), "global")


async def test_forget_user_keeps_bans(redis: Redis) -> None:
    assert (await take(redis, "r1", now=T0 - 86400)).allowed
    assert (await take(redis, "r2", now=T0)).allowed
    assert (await take(redis, "r9", user="telegram:2")).allowed
    await limits.ban(redis, USER, "owner:1", "abuse")
    await limits.forget_user(redis, USER, now=T0)
    left = sorted(k.decode() for k in await redis.keys("stembot:limits:*"))
    assert left == [
        "stembot:limits:active:telegram:2",
        "stembot:limits:admitting",  # r1, r2 and r9 count towards the queue cap until queued
        "stembot:limits:bans",
        "stembot:limits:minutes:telegram:2:2025-03-10",
        "stembot:limits:window:telegram:2",
    ]
    assert await limits.is_banned(redis, USER)


async def test_message_of_allowed_decision_is_an_error() -> None:
    with pytest.raises(ValueError):
        limits.message(Decision(True))


async def test_acquire_release_loop_is_cheap(redis: Redis) -> None:
    lim = Limits(jobs_per_hour=0, daily_minutes=0)
    start = time.perf_counter()
    for i in range(300):
        assert (await take(redis, f"r{i}", lim)).allowed
        await limits.release(redis, USER, f"r{i}")
    assert time.perf_counter() - start < 3.0
    assert await redis.zcard(limits.window_key(USER)) == 300


async def test_scripts_survive_a_script_flush(redis: Redis) -> None:
    assert (await take(redis, "r1")).allowed
    await redis.script_flush()
    assert (await take(redis, "r2")).reason == "active"
