"""The limiter: count a user's requests against the limits in force, atomically.

Every check is one Lua script, so many requests of one user at once cannot slip through:
:func:`acquire` (ban, queue cap, active jobs, hourly window, minutes left today),
:func:`charge_minutes` (an upload's length once probed), :func:`release` (a request ended),
:func:`refund` (a request refused later). What is counted (keys: shared.keys):

- the hour window: request id -> start time (expires 1 h idle);
- the active slots: request id -> expiry (6 h: a crashed frontend cannot block a user forever);
- the audio minutes of a UTC day: ``total`` and request id -> minutes (2 days);
- the requests admitted but not queued yet, all users together: they count towards the
  queue cap, so a burst cannot pass it before any of them is queued (10 min at most).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from shared import keys
from shared.limits.policy import Limits, check_scope
from shared.lua import LuaScript

WINDOW_S = 3600
ACTIVE_TTL_S = 6 * 3600
MINUTES_TTL_S = 2 * 86400
DAY_S = 86400
ADMITTING_TTL_S = 600

#: "mix_hourly": the custom mixes of an hour (shared.mixes), counted apart from songs.
Reason = Literal["banned", "busy", "active", "hourly", "daily", "mix_hourly"]


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`acquire`; ``limit``/``used`` describe the limit that was hit."""

    allowed: bool
    reason: Reason | None = None
    retry_after_s: float | None = None
    limit: int | None = None
    used: float | None = None
    #: Audio minutes of the refused request (reason "daily").
    requested: float | None = None


_ACQUIRE = LuaScript("""
local now = tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
   or (ARGV[14] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[14] .. ' ' .. ARGV[1]) == 1) then
  return {'banned', '0', '0'}
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then return {'ok', '0', '0'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[11]))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local want = tonumber(ARGV[10]) or 0
if ARGV[4] ~= '1' then
  local cap = tonumber(ARGV[6])
  local depth = tonumber(ARGV[5]) + redis.call('ZCARD', KEYS[5])
  if cap > 0 and depth >= cap then return {'busy', tostring(depth), '0'} end
  local active = redis.call('ZCARD', KEYS[3])
  if active >= tonumber(ARGV[7]) then return {'active', tostring(active), '0'} end
  local per_hour = tonumber(ARGV[8])
  local count = redis.call('ZCARD', KEYS[2])
  if per_hour > 0 and count >= per_hour then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'hourly', tostring(count), oldest[2]}
  end
  local daily = tonumber(ARGV[9])
  local used = tonumber(redis.call('HGET', KEYS[4], 'total') or '0')
  if daily > 0 and (used >= daily or used + want > daily) then
    return {'daily', tostring(used), '0'}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[11])
  if want > 0 then
    redis.call('HINCRBYFLOAT', KEYS[4], 'total', want)
    redis.call('HSET', KEYS[4], ARGV[2], want)
    redis.call('EXPIRE', KEYS[4], ARGV[13])
  end
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[12]), ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[12])
if ARGV[4] ~= '1' then
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[15]), ARGV[2])
  redis.call('EXPIRE', KEYS[5], ARGV[15])
end
return {'ok', '0', '0'}
""")

# Take a request back out of the counts: active slot, hour window, minutes of its day.
_REFUND = LuaScript("""
local n = redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  local m = redis.call('HGET', KEYS[i], ARGV[1])
  if m then
    n = n + 1
    redis.call('HDEL', KEYS[i], ARGV[1])
    if tonumber(redis.call('HINCRBYFLOAT', KEYS[i], 'total', -tonumber(m))) < 1e-6 then
      redis.call('HDEL', KEYS[i], 'total')
    end
  end
end
return n
""")

# Count a request's audio minutes once: refused (0) when it would go over the day's limit.
_CHARGE = LuaScript("""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local want = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local daily = tonumber(ARGV[3])
if daily > 0 and used + want > daily then return {tostring(used)} end
redis.call('HINCRBYFLOAT', KEYS[1], 'total', want)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
""")

window_key = keys.limit_window
active_key = keys.limit_active
minutes_key = keys.limit_minutes


def recent_minutes_keys(user_id: str, now: float) -> list[str]:
    """Today's key and the two before it: the only ones that can still exist."""
    return [minutes_key(user_id, now - d * DAY_S) for d in range(3)]


async def acquire(
    redis: Redis,
    *,
    user_id: str,
    scope: str | None,
    request_id: str,
    audio_minutes: float | None,
    queue_depth: int,
    limits: Limits,
    exempt: bool = False,
    now: float | None = None,
    avg_job_s: float = 60.0,
    workers: int = 1,
    busy_retry_s: float | None = None,
) -> Decision:
    """Check every limit and, if allowed, count the request; atomic per call.

    ``audio_minutes`` None (length not known yet) only checks that minutes are left.
    Exempt users (admins) skip every limit but bans and still take an active slot (they do
    not count towards the queue cap while arriving).
    Acquiring a request id that is still active again is allowed and counts nothing.
    """
    now = time.time() if now is None else now
    counts = (queue_depth, limits.queue_cap, limits.active_jobs, limits.jobs_per_hour)
    args = [user_id, request_id, repr(now), "1" if exempt else "0", *map(str, counts)]
    args += [str(limits.daily_minutes), "" if audio_minutes is None else repr(float(audio_minutes))]
    args += [str(WINDOW_S), str(ACTIVE_TTL_S), str(MINUTES_TTL_S)]
    args += [check_scope(scope) if scope else "", str(ADMITTING_TTL_S)]
    keys_ = [keys.BANS, window_key(user_id), active_key(user_id), minutes_key(user_id, now)]
    keys_ += [keys.ADMITTING]
    raw = await _ACQUIRE(redis, keys_, args)
    kind, used, extra = (x.decode() for x in raw)
    if kind == "ok":
        return Decision(True)
    if kind == "banned":
        return Decision(False, "banned")
    if kind == "busy":
        depth = int(used)
        retry = busy_retry_s
        if retry is None:
            retry = (depth - limits.queue_cap + 1) * avg_job_s / max(1, workers)
        return Decision(False, "busy", max(retry, 1.0), limits.queue_cap, depth)
    if kind == "active":
        return Decision(False, "active", None, limits.active_jobs, int(used))
    if kind == "hourly":
        retry = max(float(extra) + WINDOW_S - now, 1.0)
        return Decision(False, "hourly", retry, limits.jobs_per_hour, int(used))
    day_end = (math.floor(now / DAY_S) + 1) * DAY_S
    return Decision(False, "daily", day_end - now, limits.daily_minutes, float(used), audio_minutes)


async def admitted(redis: Redis, request_id: str) -> None:
    """The request is in the queue now (or was refused): it no longer counts as arriving."""
    await redis.zrem(keys.ADMITTING, request_id)


async def release(redis: Redis, user_id: str, request_id: str) -> bool:
    """Free the active slot of a request whose job ended (done, failed or cancelled)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrem(active_key(user_id), request_id)
        pipe.zrem(keys.ADMITTING, request_id)
        freed, _ = await pipe.execute()
    return bool(freed)


async def refund(redis: Redis, user_id: str, request_id: str, now: float | None = None) -> bool:
    """Uncount a request rejected later (unreadable file...): slot, hour window, minutes."""
    now = time.time() if now is None else now
    keys_ = [active_key(user_id), window_key(user_id), *recent_minutes_keys(user_id, now)[:2]]
    return bool(await _REFUND(redis, keys_, [request_id]))


async def charge_minutes(
    redis: Redis,
    user_id: str,
    request_id: str,
    minutes: float,
    *,
    daily_minutes: int = 0,
    now: float | None = None,
) -> Decision:
    """Count the audio of a request once its length is known (idempotent per request).

    With ``daily_minutes`` > 0 the request is refused (nothing counted) when it would go over
    the day's minutes; 0 counts without checking (exempt users, or audio already processed).
    """
    now = time.time() if now is None else now
    args = [request_id, repr(float(minutes)), str(daily_minutes), str(MINUTES_TTL_S)]
    raw = await _CHARGE(redis, [minutes_key(user_id, now)], args)
    if raw == 1:
        return Decision(True)
    day_end = (math.floor(now / DAY_S) + 1) * DAY_S
    used = float(raw[0].decode())
    return Decision(False, "daily", day_end - now, daily_minutes, used, float(minutes))


async def add_minutes(
    redis: Redis, user_id: str, request_id: str, minutes: float, now: float | None = None
) -> None:
    """Count the audio of a request acquired before its length was known (a link)."""
    key = minutes_key(user_id, time.time() if now is None else now)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrbyfloat(key, "total", float(minutes))
        pipe.hset(key, request_id, repr(float(minutes)))
        pipe.expire(key, MINUTES_TTL_S)
        await pipe.execute()


async def forget_user(redis: Redis, user_id: str, now: float | None = None) -> None:
    """Delete the usage kept about a user (window, active jobs, minutes, mixes).

    Bans stay: a ban is the operators' record of abuse, not data the user gave us, and
    erasing it on request would let a banned user lift their own ban.
    """
    now = time.time() if now is None else now
    keys_ = [window_key(user_id), active_key(user_id), *recent_minutes_keys(user_id, now)]
    keys_.append(keys.limit_mixes(user_id))
    await redis.delete(*keys_)
