"""What the processes of one bot share in Redis, besides the send budget: who is alive, the
events a stopped process left unacknowledged, and the requests waiting in the queue.

Each process has its own consumer name in the bot's stream group (``<host>:<pid>`` unless
set). Every ``claim_after_s / 3`` it says it is alive (``stembot:<platform>:processes``, a
sorted set of names by Redis time), refreshes the idle time of the entries it still works on
(XCLAIM to itself), and takes over (XAUTOCLAIM) the entries idle for ``claim_after_s``: those
of a process that stopped or died. A process that comes back under the same name reads its
own pending entries first (shared.events).

The waiting registry (``stembot:<platform>:waiting``, request id -> process name) says which
process keeps a waiting request's place shown: the one that followed it first. A process
takes over the requests of every process not seen alive for ``claim_after_s``, atomically,
so exactly one does.
"""

from __future__ import annotations

import contextlib
import os
import socket

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared import keys, places
from shared.events import decode_entry
from shared.lua import LuaScript
from shared.schemas import ProgressEvent

#: Entries taken over in one round at most (the rest in the next).
CLAIM_BATCH = 500

# KEYS: the processes' sorted set, the waiting registry; ARGV: this process, claim after (ms).
# Marks this process alive and takes the waiting requests of processes that are not; replies
# with every request this process shows now, then '', then the names of the dead processes.
_ADOPT = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local after = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 100 * after)
redis.call('PEXPIRE', KEYS[1], 100 * after)
local alive, dead = {}, {}
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - after, '+inf')) do
  alive[name] = true
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - after))) do
  dead[#dead + 1] = name
end
local mine = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local owner = all[i + 1]
  if owner == ARGV[1] or not alive[owner] then
    if owner ~= ARGV[1] then redis.call('HSET', KEYS[2], all[i], ARGV[1]) end
    mine[#mine + 1] = all[i]
  end
end
mine[#mine + 1] = ''
for _, name in ipairs(dead) do mine[#mine + 1] = name end
return mine
""")


def default_name() -> str:
    """This process's name among its bot's processes: unique per host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Peers:
    """One process's side of what the processes of a bot share."""

    def __init__(
        self,
        redis: Redis,
        platform: str,
        stream: str,
        group: str,
        name: str,
        *,
        claim_after_s: float,
        queues: tuple[str, str] | None,
    ) -> None:
        self.redis, self.stream, self.group, self.name = redis, stream, group, name
        self.claim_after_ms = max(1, int(claim_after_s * 1000))
        self.registry = keys.waiting(platform)
        self.processes = keys.processes(platform)
        self.queues = queues

    # --- the stream ----------------------------------------------------------------------

    async def keep(self, entry_ids: list[str]) -> None:
        """Entries this process still works on: not idle, so nobody takes them over."""
        if entry_ids:
            ids: list[str | bytes | int | memoryview[int]] = list(entry_ids)
            await self.redis.xclaim(self.stream, self.group, self.name, 0, ids, justid=True)

    async def claim(self) -> list[tuple[str, ProgressEvent]]:
        """Entries idle for ``claim_after_s``, now this process's (oldest first)."""
        found: list[tuple[str, ProgressEvent]] = []
        start = "0-0"
        while len(found) < CLAIM_BATCH:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.name, self.claim_after_ms, start, count=100
            )
            start, entries = reply[0], reply[1]
            gone = [_text(eid) for eid in (reply[2] if len(reply) > 2 else [])]
            if gone:  # trimmed from the stream while pending: nothing left to deliver
                await self.redis.xack(self.stream, self.group, *gone)
            found += [(_text(eid), decode_entry(fields)) for eid, fields in entries if fields]
            if _text(start) == "0-0":
                break
        return found

    # --- alive, and the waiting requests -------------------------------------------------

    async def adopt(self) -> list[str]:
        """Say this process is alive; the waiting requests it shows now (its own, and those of
        processes not alive any more)."""
        reply = await _ADOPT(
            self.redis, [self.processes, self.registry], [self.name, str(self.claim_after_ms)]
        )
        names = [_text(x) for x in reply]
        split = names.index("")
        await self._forget(names[split + 1 :])
        return names[:split]

    async def _forget(self, dead: list[str]) -> None:
        """Forget dead processes once nothing is pending for them (claim takes it over)."""
        if not dead:
            return
        pending: dict[str, int] = {}
        with contextlib.suppress(ResponseError):  # no group yet
            for consumer in await self.redis.xinfo_consumers(self.stream, self.group):
                pending[_text(consumer["name"])] = int(consumer["pending"])
        gone = [name for name in dead if not pending.get(name)]
        for name in gone:
            if name in pending:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
        if gone:
            await self.redis.zrem(self.processes, *gone)

    async def register(self, request_id: str) -> None:
        """This process keeps the place of this waiting request shown."""
        await self.redis.hset(self.registry, request_id, self.name)  # type: ignore[misc]

    async def drop(self, request_id: str) -> None:
        """A request of this process's that is not waiting any more."""
        await self.redis.hdel(self.registry, request_id)  # type: ignore[misc]

    async def places(self, requests: list[tuple[str, str]]) -> places.Places | None:
        """The places of these (request id, job key) pairs, where this process shows them;
        None without queues to read."""
        if self.queues is None or not requests:
            return None
        queue, download = self.queues
        return await places.places(
            self.redis,
            requests,
            registry=self.registry,
            owner=self.name,
            queue_name=queue,
            download_queue=download,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
