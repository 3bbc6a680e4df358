"""Waiting on a bot's event stream in tests."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis


async def settled(redis: Redis, stream: str) -> None:
    """Wait until the stream's one consumer group has read and acknowledged every event."""
    async with asyncio.timeout(30):
        while True:
            [group] = await redis.xinfo_groups(stream)
            last = (await redis.xinfo_stream(stream))["last-generated-id"]
            if group["pending"] == 0 and group["last-delivered-id"] == last:
                return
            await asyncio.sleep(0.02)
