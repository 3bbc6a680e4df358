"""Per-day usage statistics for the admins: jobs by outcome, audio minutes, failures by reason.

Every request is counted once, at its final event (shared.usage.on_final), in the UTC day of
that event, globally and in its scope (``discord:guild:<id>``, ``telegram:chat:<id>``).
A final event seen again (a retried delivery, a repeated publish) counts nothing: each
request leaves a marker for a few days.

Keys (shared.keys): ``stats_day`` (scope or "global", UTC day) is a hash of done, failed,
cancelled, minutes and ``fail:<error code>`` (kept KEEP_DAYS days); ``stats_seen`` (request id)
marks a request as counted (SEEN_TTL_S).

Cached answers (a result reused at once) have no final event and are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared import keys
from shared.limits import DAY_S
from shared.lua import LuaScript
from shared.schemas import FINAL_STATES, JobRequest, JobState, ProgressEvent

PREFIX = keys.STATS
KEEP_DAYS = 90
SEEN_TTL_S = 4 * DAY_S
OUTCOMES = tuple(state.value for state in FINAL_STATES)

# Count a request once: its marker is set first, and only if it was not there yet.
_RECORD = LuaScript("""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[2], 1)
  if ARGV[3] ~= '' then redis.call('HINCRBYFLOAT', KEYS[i], 'minutes', ARGV[3]) end
  if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[i], 'fail:' .. ARGV[4], 1) end
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
return 1
""")


@dataclass(frozen=True)
class Day:
    """One UTC day's counts."""

    day: str
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    minutes: float = 0.0
    #: error code -> failed requests
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def jobs(self) -> int:
        return self.done + self.failed + self.cancelled


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


day_key = keys.stats_day
seen_key = keys.stats_seen


async def record(
    redis: Redis, request: JobRequest, event: ProgressEvent, *, scope: str | None = None
) -> bool:
    """Count a request that just ended; False when it was counted already (or is not final)."""
    if not event.state.final:
        return False
    day = day_of(event.ts)
    keys = [seen_key(request.request_id), day_key(None, day)]
    if scope:
        keys.append(day_key(scope, day))
    minutes = ""
    if event.state == JobState.DONE and event.result is not None and event.result.duration_s:
        minutes = repr(event.result.duration_s / 60)
    reason = (event.error_code or "unknown") if event.state == JobState.FAILED else ""
    args = [str(SEEN_TTL_S), event.state.value, minutes, reason, str((KEEP_DAYS + 1) * DAY_S)]
    counted = await _RECORD(redis, keys, args)
    return bool(counted)


async def recent(
    redis: Redis, days: int, scope: str | None = None, *, now: float | None = None
) -> list[Day]:
    """The last ``days`` UTC days (today first, 1 to KEEP_DAYS), globally or in one scope."""
    days = max(1, min(KEEP_DAYS, days))
    now = time.time() if now is None else now
    names = [day_of(now - d * DAY_S) for d in range(days)]
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(day_key(scope, name))
        raws = await pipe.execute()
    return [_day(name, raw) for name, raw in zip(names, raws, strict=True)]


def _day(name: str, raw: dict[bytes, bytes]) -> Day:
    values = {k.decode(): v.decode() for k, v in raw.items()}
    failures = {
        k.removeprefix("fail:"): int(v) for k, v in sorted(values.items()) if k.startswith("fail:")
    }
    return Day(
        day=name,
        done=int(values.get("done", 0)),
        failed=int(values.get("failed", 0)),
        cancelled=int(values.get("cancelled", 0)),
        minutes=float(values.get("minutes", 0)),
        failures=failures,
    )


def total(days: list[Day]) -> Day:
    """The sum of several days (its ``day`` is "total")."""
    failures: dict[str, int] = {}
    for d in days:
        for code, n in d.failures.items():
            failures[code] = failures.get(code, 0) + n
    return Day(
        day="total",
        done=sum(d.done for d in days),
        failed=sum(d.failed for d in days),
        cancelled=sum(d.cancelled for d in days),
        minutes=sum(d.minutes for d in days),
        failures=dict(sorted(failures.items())),
    )
