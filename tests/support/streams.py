"""Waiting on a bot's event stream in tests."""

from __future__ import annotations

from redis.asyncio import Redis

from tests.support.waiting import until


async def settled(redis: Redis, stream: str) -> None:
    """Wait until the stream's one consumer group has read and acknowledged every event."""

    async def done() -> bool:
        [group] = await redis.xinfo_groups(stream)
        last = (await redis.xinfo_stream(stream))["last-generated-id"]
        return bool(group["pending"] == 0 and group["last-delivered-id"] == last)

    await until(done, timeout_s=30, what=f"every event on {stream} acknowledged")
