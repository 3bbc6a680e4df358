"""Health checks for /healthz: Redis answers, and a separation worker is alive.

A worker writes arq's health-check key only after its start-up (default model loaded), and
refreshes it while it runs, so the key's presence means "a worker is up with its model".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared import keys
from shared.config import Settings

HealthCheck = Callable[[], Awaitable[bool]]


def service_checks(redis: Redis, settings: Settings) -> list[HealthCheck]:
    """The checks the web server runs for /healthz."""

    async def check_redis() -> bool:
        return bool(await redis.ping())

    async def check_workers() -> bool:
        return bool(await redis.exists(keys.health_check(settings.redis.queue_name)))

    return [check_redis, check_workers]
