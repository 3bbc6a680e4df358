"""Limit checks per second against a real redis-server (issue 6's benchmark line).

Two figures, both on a private redis-server started here:

* ``acquire_release_per_s``: one Lua ``acquire`` and one ``release`` after the other, from
  50 users: the cost of the limits core itself.
* ``gate_admits_per_s``: the whole per-request path the bots run (``Gate.admit``: overrides,
  queue depth, workers, the Lua check), 200 at a time from 50 users.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from shared import limits
from shared.config import Settings
from shared.gate import Gate
from shared.redis_server import PrivateRedis

USERS = 50


async def _measure(redis: Redis, n: int) -> dict[str, Any]:
    loose = limits.Limits(jobs_per_hour=0, active_jobs=100, daily_minutes=0, queue_cap=10000)
    start = time.perf_counter()
    for i in range(n):
        user = f"bench:{i % USERS}"
        await limits.acquire(
            redis,
            user_id=user,
            scope=None,
            request_id=f"r{i}",
            audio_minutes=3.0,
            queue_depth=0,
            limits=loose,
        )
        await limits.release(redis, user, f"r{i}")
    sequential = n / (time.perf_counter() - start)

    settings = Settings(jobs_per_hour=0, active_jobs=100, daily_minutes=0, queue_cap=10000)
    gate = Gate(redis, settings, "bench")
    start = time.perf_counter()
    for batch in range(0, n, 200):
        await asyncio.gather(
            *(gate.admit(f"gate:{i % USERS}") for i in range(batch, min(n, batch + 200)))
        )
    admits = n / (time.perf_counter() - start)
    return {
        "checks": n,
        "acquire_release_per_s": round(sequential),
        "gate_admits_per_s": round(admits),
    }


async def run(n: int = 3000) -> dict[str, Any]:
    with PrivateRedis() as server:
        redis = Redis.from_url(server.url)
        try:
            return await _measure(redis, n)
        finally:
            await redis.aclose()


if __name__ == "__main__":
    print(asyncio.run(run()))
