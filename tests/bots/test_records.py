"""bots.records against a real Redis: two processes editing one status message."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bots import records
from bots.records import Parts, Record, Turn
from shared import keys
from shared.redis_server import PrivateRedis

PLATFORM = "telegram"


@pytest.fixture
async def other(redis: Redis, redis_server: PrivateRedis) -> AsyncIterator[Redis]:
    """A second process's own connection."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_one_process_edits_at_a_time_and_an_older_event_is_never_shown_over_a_newer(
    redis: Redis, other: Redis
) -> None:
    a, b = Record(redis, PLATFORM, "r1", "a"), Record(other, PLATFORM, "r1", "b")
    assert await a.begin("progress", "100-1") == Turn("ok")
    busy = await b.begin("progress", "100-2")  # a newer event, while a edits
    assert busy.verdict == "busy" and 0 < busy.wait_s <= records.LEASE_MS / 1000
    await a.end("100-1", None, shown=True)

    assert await b.begin("progress", "100-2") == Turn("ok")
    await b.end("100-2", None, shown=True)
    # a still holds the older event (read before, shown late): it stays unshown
    assert await a.begin("progress", "100-1") == Turn("stale")
    assert await a.begin("progress", "100-2") == Turn("stale")  # shown already
    # a place read before b's event, or read earlier than the place shown, is stale too
    assert await a.begin("place", "100-1", read_ms=int(time.time() * 1000)) == Turn("stale")
    assert await a.begin("place", "100-2", read_ms=5) == Turn("ok")
    await a.end(None, 5, shown=True)
    assert await b.begin("place", "100-2", read_ms=4) == Turn("stale")
    assert await redis.hget(keys.final_parts(PLATFORM, "r1"), "shown") == b"100-2"


async def test_after_the_final_text_only_the_final_goes_on(redis: Redis) -> None:
    a = Record(redis, PLATFORM, "r1", "a")
    assert await a.begin("final", "200-0") == Turn("ok")
    parts = await Parts.load(redis, PLATFORM, "r1")
    await parts.mark("text")
    await a.end("200-0", None, shown=True)

    assert await a.begin("progress", "300-0") == Turn("stale")  # even a later one
    assert await a.begin("place", "300-0", read_ms=10**13) == Turn("stale")
    assert await a.begin("final", "300-0") == Turn("ok")  # the rest of the final's parts
    # the record's bookkeeping is not a part of the final message
    assert (await Parts.load(redis, PLATFORM, "r1")).done == {"text"}


async def test_a_lease_left_by_a_dead_process_runs_out(redis: Redis) -> None:
    a, b = Record(redis, PLATFORM, "r1", "a"), Record(redis, PLATFORM, "r1", "b")
    assert await a.begin("progress", "1-0") == Turn("ok")  # and a dies
    key = keys.final_parts(PLATFORM, "r1")
    until = int((await redis.hget(key, "lease") or b"").split()[-1])
    assert until - time.time() * 1000 > records.LEASE_MS - 5000
    await redis.hset(key, "lease", f"a {int(time.time() * 1000) - 1}")  # its time is up
    assert await b.begin("progress", "2-0") == Turn("ok")
