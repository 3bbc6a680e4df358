"""/healthz with the real checks: Redis reachable, a worker alive with its model loaded."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bots.web import create_app
from shared.health import service_checks
from shared.redis_server import PrivateRedis, free_port
from tests.support.service import running_service
from tests.support.waiting import until
from tests.support.web import serving


async def healthz(app: web.Application) -> tuple[int, dict[str, object]]:
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            return resp.status, await resp.json()


async def test_healthy_with_a_worker_degraded_without(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, redis: Redis
) -> None:
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        settings, storage = svc.settings, svc.storage
        checks = service_checks(redis, settings)
        key = f"{settings.redis.queue_name}:health-check"
        # arq records health once its start-up is done
        await until(lambda: redis.exists(key), timeout_s=30, what="the worker's health check")
        status, body = await healthz(create_app(settings, storage, checks=checks))
        assert (status, body) == (200, {"status": "ok", "checks": {"redis": True, "workers": True}})
    # the worker is gone (arq deletes its health key on close)
    status, body = await healthz(create_app(settings, storage, checks=checks))
    assert status == 503
    assert body == {"status": "degraded", "checks": {"redis": True, "workers": False}}


async def test_unreachable_redis_is_degraded(storage_dir: Path) -> None:
    from shared.config import Settings
    from shared.storage import build_storage

    settings = Settings(storage_dir=storage_dir, signing_key="k")
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        status, body = await healthz(
            create_app(
                settings,
                build_storage(settings),
                checks=service_checks(dead, settings),
                run_cleanup=False,
            )
        )
    finally:
        await dead.aclose()
    assert status == 503
    assert body == {"status": "degraded", "checks": {"redis": False, "workers": False}}
