"""Which limits are in force where: the admins' overrides, bans, and their audit log.

Overrides are layered: the defaults (settings), then the global overrides, then a scope's
("discord:guild:<id>", "telegram:chat:<id>"). Every change (set, reset, ban, unban) is one
Lua script that writes it and appends it to the audit stream (about AUDIT_MAXLEN entries
kept). Keys: shared.keys.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from shared import keys
from shared.errors import InvalidOption
from shared.i18n import N_
from shared.limits import texts
from shared.lua import LuaScript

AUDIT_MAXLEN = 10000


@dataclass(frozen=True)
class KeySpec:
    """Range and meaning of one limit an admin can set."""

    minimum: int
    maximum: int
    default: int
    help: str
    zero_unlimited: bool = False


KEYS: dict[str, KeySpec] = {
    "jobs_per_hour": KeySpec(0, 1000, 5, N_("songs a user can start per hour"), True),
    "active_jobs": KeySpec(1, 100, 1, N_("songs a user can have in progress at once")),
    "daily_minutes": KeySpec(
        0, 100000, 60, N_("minutes of audio a user can send per UTC day"), True
    ),
    "queue_cap": KeySpec(1, 10000, 50, N_("songs waiting or running, all users together")),
    "mixes_per_hour": KeySpec(0, 10000, 30, N_("custom mixes a user can make per hour"), True),
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
    mixes_per_hour: int = _field("mixes_per_hour")


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


# Set (ARGV[2] non-empty) or delete a hash field and log the change, atomically.
_ADMIN = LuaScript("""
local old = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'at', ARGV[4], 'actor', ARGV[5],
           'action', ARGV[6], 'scope', ARGV[7], 'key', ARGV[8], 'old', old, 'new', ARGV[2])
return old
""")


def check_scope(scope: str) -> str:
    """A scope as stored in keys and ban fields; ValueError for one that could be mistaken."""
    if not scope or any(c.isspace() for c in scope) or scope == "global":
        raise ValueError(f"invalid scope {scope!r}")
    return scope


def overrides_key(scope: str | None) -> str:
    return keys.limit_overrides(check_scope(scope) if scope else None)


def known(key: str) -> KeySpec:
    """The spec of a limit; InvalidOption naming the known ones."""
    spec = KEYS.get(key)
    if spec is None:
        text, values = texts.unknown_limit(key, list(KEYS))
        raise InvalidOption(text, **values)
    return spec


def parse_value(key: str, raw: str) -> int:
    """Validate an admin's ``set KEY VALUE``; InvalidOption says the allowed range."""
    spec = known(key)
    text = raw.strip()
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        value = int(text)
        if spec.minimum <= value <= spec.maximum:
            return value
    text, values = texts.out_of_range(key, spec, raw)
    raise InvalidOption(text, **values)


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
    return bytes(await _ADMIN(redis, [hash_key, keys.AUDIT], args)).decode()


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
    known(key)
    await _admin(redis, overrides_key(scope), key, "", actor, "reset", scope)
    return await effective(redis, defaults or Limits(), scope)


async def audit_log(redis: Redis, count: int = 20) -> list[AuditEntry]:
    """The latest admin changes, newest first."""
    rows = await redis.xrevrange(keys.AUDIT, count=count)
    entries = []
    for entry_id, raw in rows:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        at = float(fields.pop("at"))
        entries.append(AuditEntry(id=entry_id.decode(), at=at, **fields))
    return entries


def ban_field(user_id: str, scope: str | None) -> str:
    """A ban's field in the bans hash: ``<user>`` (everywhere) or ``<scope> <user>``."""
    return f"{check_scope(scope)} {user_id}" if scope else user_id


async def ban(
    redis: Redis, user_id: str, actor: str, reason: str = "", *, scope: str | None = None
) -> None:
    """Ban a user ("telegram:123") everywhere, or only in one scope."""
    field = ban_field(user_id, scope)
    await _admin(redis, keys.BANS, field, reason.strip() or "-", actor, "ban", scope)


async def unban(redis: Redis, user_id: str, actor: str, *, scope: str | None = None) -> bool:
    """Lift a ban; False when there was none."""
    return bool(
        await _admin(redis, keys.BANS, ban_field(user_id, scope), "", actor, "unban", scope)
    )


async def is_banned(redis: Redis, user_id: str, scope: str | None = None) -> bool:
    """Banned everywhere, or in this scope."""
    fields = [user_id] + ([ban_field(user_id, scope)] if scope else [])
    return any(await redis.hmget(keys.BANS, fields))  # type: ignore[misc]
