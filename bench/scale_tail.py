"""Follow every progress stream in Redis: ``python -m bench.scale_tail REDIS_URL OUT.json``.

The scale bench's view of the jobs from outside the worker: it finds the event streams
(any Redis stream whose entries carry a ``data`` progress event), reads them with plain
XREAD (not the bots' consumer groups, so their delivery is untouched) and keeps, per job,
when its first working state (downloading/decoding/...) and its final state were published.
Queue-position events are only counted. On SIGTERM it writes OUT.json: the jobs, the entries
per state, its own Redis commands by name since SIGUSR1 (the bench takes them out of the
per-job figures), and whether any stream was trimmed past what it had read (then some entries
were missed).

Its own process, so that the fake platforms' work in the bench process never slows it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

QUEUED = b'"state":"queued"'
SCAN_EVERY_S = 0.5


class Tail:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.streams: dict[bytes, bytes] = {}
        self.ignored: set[bytes] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.states: Counter[str] = Counter()
        self.read = 0
        self.commands: Counter[str] = Counter()

    async def discover(self) -> None:
        cursor = 0
        while True:
            cursor, found = await self.redis.scan(cursor, count=1000, _type="stream")
            self.commands["scan"] += 1
            for name in found:
                if name not in self.streams and name not in self.ignored:
                    first = await self.redis.xrange(name, count=1)
                    self.commands["xrange"] += 1
                    if first and b"data" in first[0][1] and b"job_id" in first[0][1][b"data"]:
                        self.streams[name] = b"0"
                    elif first:
                        self.ignored.add(name)
            if cursor == 0:
                return

    async def step(self, block_ms: int | None = 200) -> int:
        """Read what is new on the streams (waiting up to ``block_ms``); how many entries."""
        if not self.streams:
            return 0
        reply = await self.redis.xread(self.streams, count=5000, block=block_ms)  # type: ignore[arg-type]
        self.commands["xread"] += 1
        taken = 0
        for name, entries in reply:
            for entry_id, fields in entries:
                self.streams[name] = entry_id
                self.take(fields.get(b"data", b""))
                taken += 1
        return taken

    def take(self, raw: bytes) -> None:
        self.read += 1
        if QUEUED in raw:
            self.states["queued"] += 1
            return
        event = json.loads(raw)
        state, job = event["state"], event["job_id"]
        self.states[state] += 1
        seen = self.jobs.setdefault(job, {"start": None, "final": None, "state": None})
        if state in ("done", "failed", "cancelled"):
            if seen["final"] is None:
                seen["final"], seen["state"] = event["ts"], state
        elif seen["start"] is None:
            seen["start"] = event["ts"]

    async def complete(self) -> bool:
        """Whether every entry ever added to the streams was read (none trimmed first)."""
        added = 0
        for name in self.streams:
            info = await self.redis.xinfo_stream(name)
            self.commands["xinfo|stream"] += 1
            added += int(info.get("entries-added", 0))
        return added == self.read


async def main(url: str, out: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    redis = Redis.from_url(url)
    tail = Tail(redis)
    # SIGUSR1: the measured part starts; count its own commands from here
    loop.add_signal_handler(signal.SIGUSR1, tail.commands.clear)
    try:
        next_scan = 0.0
        while not stop.is_set():
            if loop.time() >= next_scan:
                await tail.discover()
                next_scan = loop.time() + SCAN_EVERY_S
            if tail.streams:
                await tail.step()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SCAN_EVERY_S):
                        await stop.wait()
        await tail.discover()
        while await tail.step(block_ms=None):
            pass
        complete = await tail.complete()
        result = {
            "jobs": tail.jobs,
            "states": dict(tail.states),
            "entries": tail.read,
            "streams": sorted(s.decode() for s in tail.streams),
            "complete": complete,
            "commands": dict(tail.commands),
        }
        out.write_text(json.dumps(result))
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
