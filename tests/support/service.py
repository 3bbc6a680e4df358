"""A whole local service for tests: real Redis, an in-process arq worker, the web server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool

from bots.web import create_app
from shared import events
from shared.config import Settings
from shared.core import Accepted, Core, Upload
from shared.intake import build_options, file_chunks
from shared.redis_server import free_port
from shared.schemas import JobOptions, LocalReply, ProgressEvent
from shared.storage import LocalStorage, build_storage
from tests.support.waiting import until
from worker.main import build_download_worker, build_worker


class StorageFolders:
    """What a run left in the storage folder of its ``settings``."""

    settings: Settings

    def tmp_leftovers(self) -> list[Path]:
        return _listing(self.settings.storage.storage_dir / "tmp")

    def uploads(self) -> list[Path]:
        return _listing(self.settings.storage.storage_dir / "uploads")


def _listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


@dataclass
class Service(StorageFolders):
    settings: Settings
    redis: ArqRedis
    storage: LocalStorage
    worker: Worker
    base_url: str

    def options(self, **kwargs: object) -> JobOptions:
        return build_options(self.settings, **kwargs)  # type: ignore[arg-type]

    async def submit(
        self,
        path: Path,
        *,
        user: str = "u1",
        options: JobOptions | None = None,
        reply_to: str | None = None,
    ) -> tuple[Accepted, str]:
        """A song from ``user`` through the core, outside the limits; (accepted, its stream)."""
        stream = reply_to or f"test:events:{uuid.uuid4().hex}"
        accepted = await Core(self.redis, self.storage, self.settings).submit(
            None,
            Upload(file_chunks(path), path.name),
            options or self.options(),
            LocalReply(frontend="test"),
            user_id=f"test:{user}",
            reply_to=stream,
        )
        return accepted, stream

    async def events_until_final(self, stream: str, timeout_s: float = 60) -> list[ProgressEvent]:
        """Every event on ``stream`` up to and including the final one."""
        seen: list[ProgressEvent] = []
        last = "0"

        async def final() -> list[ProgressEvent] | None:
            nonlocal last
            for _, entries in await self.redis.xread({stream: last}):
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    seen.append(events.decode_entry(fields))
                    if seen[-1].state.final:
                        return seen
            return None

        return await until(final, timeout_s=timeout_s, what=f"a final event on {stream}")


@contextlib.asynccontextmanager
async def running_service(
    redis_url: str, storage_dir: Path, model_repo: Path, **overrides: object
) -> AsyncIterator[Service]:
    """The service; ``overrides`` are settings (``public_url``: the links' base, which is
    not this server's then)."""
    port = free_port()
    values: dict[str, object] = {
        "public_url": f"http://127.0.0.1:{port}",
        "signing_key": "test-signing-key-not-a-secret",
    }
    settings = Settings(
        redis_url=redis_url,
        queue_name=f"test:queue:{uuid.uuid4().hex[:8]}",
        download_queue_name=f"test:download:{uuid.uuid4().hex[:8]}",
        storage_dir=storage_dir,
        model_repo=model_repo,
        device="cpu",
        torch_threads=1,  # as the rest of the test process (tests/conftest.py)
        **(values | overrides),
    )
    storage = build_storage(settings)
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    worker = build_worker(
        settings,
        await create_pool(RedisSettings.from_dsn(redis_url)),
        handle_signals=False,
        progress_interval_s=0.05,
    )
    downloader = build_download_worker(
        settings,
        await create_pool(RedisSettings.from_dsn(redis_url)),
        handle_signals=False,
        progress_interval_s=0.05,
    )
    runner = web.AppRunner(create_app(settings, storage))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    tasks = [asyncio.create_task(w.async_run()) for w in (worker, downloader)]
    try:
        yield Service(settings, redis, storage, worker, settings.storage.public_url)
        # let jobs tidy up after their final event (timings, queue positions) before stopping
        running = [t for w in (worker, downloader) for t in w.tasks.values()]
        if running:
            await asyncio.wait(running, timeout=30)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for w in (worker, downloader):
            await w.close()
        await runner.cleanup()
        await redis.aclose()
