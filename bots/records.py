"""A request's status message as every process of a bot sees it, in Redis.

One hash per request (``stembot:<platform>:final:<request id>``, 3 days) holds:

- the parts of the final message that went out ("text", "audio:<stem>", "file:<stem>", ...,
  and "complete" once all did): :class:`Parts`, so nothing is sent twice, after a restart or
  by another process;
- ``shown``: the stream entry id of the newest event the message shows, and ``read``: the
  Redis time (ms) of the queue read behind the place it shows;
- ``lease``: ``<process> <until ms>``, the process editing the message now.

Any process may deliver any event, so two of them may hold events of one request at once.
Before an edit a process takes the lease with :meth:`Record.begin`, which also says whether
the edit is still wanted: a progress event older than the one shown, or a place read before
the one shown or based on an older event, is stale (never shown over newer), and nothing but
the final follows the final's text. After the edit :meth:`Record.end` records what is shown
and gives the lease back. A process that dies holding the lease holds it at most
``LEASE_MS``; one editing for longer (a final with large files) renews it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import keys
from shared.jobs import REQUEST_TTL_S
from shared.lua import LuaScript

#: How long a lease lasts unless renewed (ms); renewed every third of it while held.
LEASE_MS = 30_000
#: The hash's fields that are not parts of the final message.
BOOKKEEPING = frozenset({"shown", "read", "lease"})

Kind = Literal["final", "progress", "place"]

# Stream entry ids compare as (ms, seq).
_NEWER = """
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function holder()
  local lease = redis.call('HGET', KEYS[1], 'lease')
  if not lease then return nil, 0 end
  local owner, till = string.match(lease, '^(.*) (%d+)$')
  return owner, tonumber(till)
end
"""

# ARGV: kind, entry id (the event's, or for a place the newest this process saw), read ms,
# owner, lease ms, TTL s. Reply: {'ok'|'stale'|'busy', ms to wait when busy}.
_BEGIN = LuaScript(
    _NEWER
    + """
local owner, till = holder()
if owner and owner ~= ARGV[4] and till > now then return {'busy', till - now} end
if ARGV[1] ~= 'final' then
  if redis.call('HEXISTS', KEYS[1], 'text') == 1 or redis.call('HEXISTS', KEYS[1], 'complete') == 1
  then return {'stale', 0} end
  local shown = redis.call('HGET', KEYS[1], 'shown') or '0-0'
  if ARGV[1] == 'progress' and not newer(ARGV[2], shown) then return {'stale', 0} end
  if ARGV[1] == 'place' then
    local read = tonumber(redis.call('HGET', KEYS[1], 'read') or '0')
    if newer(shown, ARGV[2]) or tonumber(ARGV[3]) <= read then return {'stale', 0} end
  end
end
redis.call('HSET', KEYS[1], 'lease', ARGV[4] .. ' ' .. (now + tonumber(ARGV[5])))
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'ok', 0}
"""
)

# ARGV: owner, entry id ('' for none), read ms ('' for none), shown ('1' when the edit went
# out), lease ms (renew) or '' (give back).
_END = LuaScript(
    _NEWER
    + """
local owner = holder()
if owner ~= ARGV[1] then return 0 end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'lease', ARGV[1] .. ' ' .. (now + tonumber(ARGV[5])))
  return 1
end
redis.call('HDEL', KEYS[1], 'lease')
if ARGV[4] == '1' then
  if ARGV[2] ~= '' and newer(ARGV[2], redis.call('HGET', KEYS[1], 'shown') or '0-0') then
    redis.call('HSET', KEYS[1], 'shown', ARGV[2])
  end
  if ARGV[3] ~= '' and tonumber(ARGV[3]) > tonumber(redis.call('HGET', KEYS[1], 'read') or '0')
  then redis.call('HSET', KEYS[1], 'read', ARGV[3]) end
end
return 1
"""
)


# ARGV: part, TTL s.
_MARK = LuaScript("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
""")


class Parts:
    """What of a request's final message went out already: "text", "file:<stem>", ..."""

    def __init__(self, redis: Redis, platform: str, request_id: str, done: set[str]) -> None:
        self.redis, self.key, self.done = redis, keys.final_parts(platform, request_id), done

    @classmethod
    async def load(cls, redis: Redis, platform: str, request_id: str) -> Parts:
        raw = await redis.hkeys(keys.final_parts(platform, request_id))  # type: ignore[misc]
        return cls(redis, platform, request_id, {k.decode() for k in raw} - BOOKKEEPING)

    async def reload(self) -> None:
        """What went out meanwhile, from any process."""
        raw = await self.redis.hkeys(self.key)  # type: ignore[misc]
        self.done = {k.decode() for k in raw} - BOOKKEEPING

    def __contains__(self, part: str) -> bool:
        return part in self.done

    async def mark(self, part: str) -> None:
        """Record a part as sent (in the record the edit's lease made: one a user's /forget
        deleted meanwhile is not made again)."""
        await _MARK(self.redis, [self.key], [part, str(REQUEST_TTL_S)])
        self.done.add(part)


@dataclass(frozen=True)
class Turn:
    """What :meth:`Record.begin` said: "ok" (edit now), "stale" or "busy" (wait ``wait_s``)."""

    verdict: Literal["ok", "stale", "busy"]
    wait_s: float = 0.0


class Record:
    """A request's status message in Redis, as one process (``owner``) edits it."""

    def __init__(self, redis: Redis, platform: str, request_id: str, owner: str) -> None:
        self.redis, self.owner = redis, owner
        self.key = keys.final_parts(platform, request_id)

    async def begin(self, kind: Kind, entry: str, read_ms: int = 0) -> Turn:
        """Take the lease for an edit of ``kind``: the stream entry it shows (for a place: the
        newest entry this process saw of the request) and the queue read it shows."""
        verdict, wait_ms = await _BEGIN(
            self.redis,
            [self.key],
            [kind, entry or "0-0", str(read_ms), self.owner, str(LEASE_MS), str(REQUEST_TTL_S)],
        )
        return Turn(verdict.decode(), int(wait_ms) / 1000)

    async def end(self, entry: str | None, read_ms: int | None, *, shown: bool) -> None:
        """Give the lease back; when ``shown``, record what the message shows now."""
        args = [self.owner, entry or "", "" if read_ms is None else str(read_ms)]
        await _END(self.redis, [self.key], [*args, "1" if shown else "0", ""])

    @contextlib.asynccontextmanager
    async def renewed(self) -> AsyncIterator[None]:
        """Keep the lease while the block runs (an edit that may take long)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE_MS / 3000)
                with contextlib.suppress(RedisError):
                    await _END(self.redis, [self.key], [self.owner, "", "", "0", str(LEASE_MS)])

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
