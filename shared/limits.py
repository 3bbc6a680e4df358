"""Per-user limits, bans and admin overrides, the same for every frontend.

Redis layout (all keys prefixed ``stembot:limits:``):

``overrides:global``          hash key -> value, set by bot owners.
``overrides:<scope>``         hash key -> value for one scope ("discord:guild:<id>", ...).
``bans``                      hash ``<user>`` (global) or ``<scope> <user>`` -> reason.
``window:<user>``             zset request id -> start time, the last hour (expires 1 h idle).
``active:<user>``             zset request id -> expiry time (6 h: a crashed frontend cannot
                              block a user forever).
``minutes:<user>:<day>``      hash ``total`` and request id -> audio minutes of a UTC day
                              (expires 2 days after the last write).
``admitting``                 zset request id -> expiry: admitted, not yet queued (counts
                              towards the queue cap; 10 min at most).

Admin changes are appended to the stream ``stembot:audit`` (about 10000 entries kept).
Every check is one Lua script, so many requests of one user at once cannot slip through.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from shared.errors import InvalidOption
from shared.lua import LuaScript

PREFIX = "stembot:limits:"
AUDIT_STREAM = "stembot:audit"
AUDIT_MAXLEN = 10000
WINDOW_S = 3600
ACTIVE_TTL_S = 6 * 3600
MINUTES_TTL_S = 2 * 86400
DAY_S = 86400

Reason = Literal["banned", "busy", "active", "hourly", "daily"]


@dataclass(frozen=True)
class KeySpec:
    """Range and meaning of one limit an admin can set."""

    minimum: int
    maximum: int
    default: int
    help: str
    zero_unlimited: bool = False


KEYS: dict[str, KeySpec] = {
    "jobs_per_hour": KeySpec(0, 1000, 5, "songs a user can start per hour", True),
    "active_jobs": KeySpec(1, 100, 1, "songs a user can have in progress at once"),
    "daily_minutes": KeySpec(0, 100000, 60, "minutes of audio a user can send per UTC day", True),
    "queue_cap": KeySpec(1, 10000, 50, "songs waiting or running, all users together"),
}


def _field(key: str) -> Any:
    spec = KEYS[key]
    return Field(default=spec.default, ge=spec.minimum, le=spec.maximum, description=spec.help)


class Limits(BaseModel):
    """The limit values in force for one request (0 = unlimited where KEYS says so)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jobs_per_hour: int = _field("jobs_per_hour")
    active_jobs: int = _field("active_jobs")
    daily_minutes: int = _field("daily_minutes")
    queue_cap: int = _field("queue_cap")


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


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: float
    actor: str
    action: str
    scope: str
    key: str
    old: str
    new: str


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

# Set (ARGV[2] non-empty) or delete a hash field and log the change, atomically.
_ADMIN = LuaScript("""
local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'at', ARGV[4], 'actor', ARGV[5],
           'action', ARGV[6], 'scope', ARGV[7], 'key', ARGV[8], 'old', old, 'new', ARGV[2])
return old
""")


def overrides_key(scope: str | None) -> str:
    return f"{PREFIX}overrides:{_scope(scope) if scope else 'global'}"


BANS_KEY = f"{PREFIX}bans"
#: zset request id -> expiry: requests admitted but not yet in a queue. They count towards
#: the queue cap, so a burst of requests cannot all pass it before any of them is queued.
ADMITTING_KEY = f"{PREFIX}admitting"
ADMITTING_TTL_S = 600


def window_key(user_id: str) -> str:
    return f"{PREFIX}window:{user_id}"


def active_key(user_id: str) -> str:
    return f"{PREFIX}active:{user_id}"


def minutes_key(user_id: str, now: float) -> str:
    return f"{PREFIX}minutes:{user_id}:{time.strftime('%Y-%m-%d', time.gmtime(now))}"


def _recent_minutes_keys(user_id: str, now: float) -> list[str]:
    """Today's key and the two before it: the only ones that can still exist."""
    return [minutes_key(user_id, now - d * DAY_S) for d in range(3)]


def _scope(scope: str) -> str:
    if not scope or any(c.isspace() for c in scope) or scope == "global":
        raise ValueError(f"invalid scope {scope!r}")
    return scope


def parse_value(key: str, raw: str) -> int:
    """Validate an admin's ``set KEY VALUE``; InvalidOption says the allowed range."""
    spec = KEYS.get(key)
    if spec is None:
        raise InvalidOption(f"Unknown limit {key!r}. Known limits: {', '.join(KEYS)}.")
    text = raw.strip()
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        value = int(text)
        if spec.minimum <= value <= spec.maximum:
            return value
    unlimited = " (0 = unlimited)" if spec.zero_unlimited else ""
    raise InvalidOption(
        f"{key} must be a whole number from {spec.minimum} to {spec.maximum}{unlimited}; "
        f"got {raw!r}."
    )


def _merge(base: dict[str, int], raw: dict[bytes, bytes]) -> None:
    for k, v in raw.items():
        key = k.decode()
        try:
            base[key] = parse_value(key, v.decode())
        except InvalidOption:
            continue  # a key or range that changed since it was stored: ignore it


async def effective(redis: Redis, defaults: Limits, scope: str | None) -> Limits:
    """Defaults, then the global overrides, then the scope's overrides."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(overrides_key(None))
        if scope:
            pipe.hgetall(overrides_key(scope))
        layers = await pipe.execute()
    values = defaults.model_dump()
    for layer in layers:
        _merge(values, layer)
    return Limits(**values)


async def overrides(redis: Redis, scope: str | None) -> dict[str, int]:
    """The values set for exactly this scope (None: the global ones)."""
    values: dict[str, int] = {}
    _merge(values, await redis.hgetall(overrides_key(scope)))  # type: ignore[misc]
    return values


async def _admin(
    redis: Redis, hash_key: str, field: str, value: str, actor: str, action: str, scope: str | None
) -> str:
    at = f"{time.time():.3f}"
    args = [field, value, str(AUDIT_MAXLEN), at, actor, action, scope or "global", field]
    return bytes(await _ADMIN(redis, [hash_key, AUDIT_STREAM], args)).decode()


async def set_limit(
    redis: Redis,
    scope: str | None,
    key: str,
    raw_value: str,
    actor: str,
    *,
    defaults: Limits | None = None,
) -> Limits:
    """Set a global (scope None) or scope override; returns the limits now in force there."""
    value = parse_value(key, raw_value)
    await _admin(redis, overrides_key(scope), key, str(value), actor, "set", scope)
    return await effective(redis, defaults or Limits(), scope)


async def reset_limit(
    redis: Redis, scope: str | None, key: str, actor: str, *, defaults: Limits | None = None
) -> Limits:
    """Drop an override (the next layer down applies again); logged like set_limit."""
    if key not in KEYS:
        raise InvalidOption(f"Unknown limit {key!r}. Known limits: {', '.join(KEYS)}.")
    await _admin(redis, overrides_key(scope), key, "", actor, "reset", scope)
    return await effective(redis, defaults or Limits(), scope)


async def audit_log(redis: Redis, count: int = 20) -> list[AuditEntry]:
    """The latest admin changes, newest first."""
    rows = await redis.xrevrange(AUDIT_STREAM, count=count)
    entries = []
    for entry_id, raw in rows:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        at = float(fields.pop("at"))
        entries.append(AuditEntry(id=entry_id.decode(), at=at, **fields))
    return entries


def _ban_field(user_id: str, scope: str | None) -> str:
    return f"{_scope(scope)} {user_id}" if scope else user_id


async def ban(
    redis: Redis, user_id: str, actor: str, reason: str = "", *, scope: str | None = None
) -> None:
    """Ban a user ("telegram:123") everywhere, or only in one scope."""
    field = _ban_field(user_id, scope)
    await _admin(redis, BANS_KEY, field, reason.strip() or "-", actor, "ban", scope)


async def unban(redis: Redis, user_id: str, actor: str, *, scope: str | None = None) -> bool:
    """Lift a ban; False when there was none."""
    return bool(
        await _admin(redis, BANS_KEY, _ban_field(user_id, scope), "", actor, "unban", scope)
    )


async def is_banned(redis: Redis, user_id: str, scope: str | None = None) -> bool:
    """Banned everywhere, or in this scope."""
    fields = [user_id] + ([_ban_field(user_id, scope)] if scope else [])
    return any(await redis.hmget(BANS_KEY, fields))  # type: ignore[misc]


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
    args += [str(WINDOW_S), str(ACTIVE_TTL_S), str(MINUTES_TTL_S), _scope(scope) if scope else ""]
    args += [str(ADMITTING_TTL_S)]
    keys = [BANS_KEY, window_key(user_id), active_key(user_id), minutes_key(user_id, now)]
    keys += [ADMITTING_KEY]
    raw = await _ACQUIRE(redis, keys, args)
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
    await redis.zrem(ADMITTING_KEY, request_id)


async def release(redis: Redis, user_id: str, request_id: str) -> bool:
    """Free the active slot of a request whose job ended (done, failed or cancelled)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrem(active_key(user_id), request_id)
        pipe.zrem(ADMITTING_KEY, request_id)
        freed, _ = await pipe.execute()
    return bool(freed)


async def refund(redis: Redis, user_id: str, request_id: str, now: float | None = None) -> bool:
    """Uncount a request rejected later (unreadable file...): slot, hour window, minutes."""
    now = time.time() if now is None else now
    keys = [active_key(user_id), window_key(user_id), *_recent_minutes_keys(user_id, now)[:2]]
    return bool(await _REFUND(redis, keys, [request_id]))


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
    """Delete the usage kept about a user (window, active jobs, minutes).

    Bans stay: a ban is the operators' record of abuse, not data the user gave us, and
    erasing it on request would let a banned user lift their own ban.
    """
    now = time.time() if now is None else now
    keys = [window_key(user_id), active_key(user_id), *_recent_minutes_keys(user_id, now)]
    await redis.delete(*keys)


def format_duration(seconds: float) -> str:
    """45 s, 12 min, 3 h, 3 h 20 min (rounded up: never "0 min")."""
    total = max(1, math.ceil(seconds))
    if total < 60:
        return f"{total} s"
    minutes = math.ceil(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _songs(n: int | None) -> str:
    return "1 song" if n == 1 else f"{n} songs"


def _minutes(value: float) -> str:
    return f"{value:.0f} minute" if round(value) == 1 else f"{value:.0f} minutes"


def message(decision: Decision) -> str:
    """What to tell the user about a refused request."""
    retry = format_duration(decision.retry_after_s or 0)
    if decision.reason == "banned":
        return "You are banned from using this bot."
    if decision.reason == "busy":
        return f"The queue is full right now. Try again in about {retry}."
    if decision.reason == "active":
        if decision.limit == 1:
            return "You already have a song in progress; wait for it to finish or cancel it."
        return (
            f"You already have {_songs(decision.limit)} in progress; "
            "wait for one to finish or cancel it."
        )
    if decision.reason == "hourly":
        return f"You can start {_songs(decision.limit)} an hour. Try again in {retry}."
    if decision.reason == "daily":
        limit, used = decision.limit or 0, decision.used or 0.0
        want = decision.requested
        if want is not None and used < limit:
            left = format_duration((limit - used) * 60)
            return (
                f"This song is {format_duration(want * 60)} long, but only {left} of your "
                f"{_minutes(limit)} of audio for today are left. Send a shorter song, "
                f"or try again in {retry}."
            )
        return f"You have used your {_minutes(limit)} of audio for today. Try again in {retry}."
    raise ValueError("the request was allowed: there is nothing to tell")
