"""Serving an aiohttp app on a free local port for a test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from shared.redis_server import free_port


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 and yield its base URL; stop it afterwards."""
    port = free_port()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
