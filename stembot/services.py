"""The commands that need Redis: the workers, the web server, the bots, `run` and `split`.

Each command imports what it runs when it runs (the bots, the workers with torch, the web
server), so that one command does not pay for loading the others.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from shared.config import Settings
from shared.redis_server import PrivateRedis
from stembot import QUEUES
from stembot.errors import CommandError, StartupError, one_line

if TYPE_CHECKING:
    from arq import Worker

    from bots.discord.settings import DiscordSettings
    from bots.telegram.settings import TelegramSettings
    from shared.storage import Storage

log = logging.getLogger("stembot")
T = TypeVar("T")


@contextlib.asynccontextmanager
async def redis_pool(
    settings: Settings, *, private_ok: bool
) -> AsyncIterator[tuple[ArqRedis, str]]:
    """The configured Redis, or a private redis-server when none is configured."""
    private: PrivateRedis | None = None
    url = settings.redis.redis_url
    if url is None:
        if not private_ok:
            raise StartupError("STEMBOT_REDIS_URL is not set (or use `stembot run`)")
        private = PrivateRedis()
        url = private.url
    # a signal may cancel us while redis-server starts in its thread: that start still runs
    # to its end, and then the server is stopped and its folder removed (below)
    starting = asyncio.ensure_future(asyncio.to_thread(private.start) if private else _nothing())
    try:
        await asyncio.shield(starting)
        if private is not None:
            log.info("started a private redis-server on %s", url)
        pool = await connect(url)
        try:
            yield pool, url
        finally:
            await pool.aclose()
    finally:
        if private is not None:
            await asyncio.wait({starting})
            await asyncio.to_thread(private.stop)


async def _nothing() -> None:
    return None


async def connect(url: str) -> ArqRedis:
    try:
        settings = dataclasses.replace(
            RedisSettings.from_dsn(url), conn_retries=2, conn_retry_delay=1
        )
        return await create_pool(settings)
    except (OSError, RedisError) as exc:
        raise StartupError(f"cannot reach Redis at {_safe_url(url)}: {exc}") from exc


class Workers:
    """The separation and download workers, each on its own pool (arq closes it on close)."""

    def __init__(self, settings: Settings, url: str, queues: tuple[str, ...] = QUEUES) -> None:
        self.settings = settings
        self.url = url
        self.queues = queues
        self.workers: list[Worker] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def build(self, *, handle_signals: bool, burst: bool = False) -> list[Worker]:
        from worker.main import build_download_worker, build_worker

        builders = {"separate": build_worker, "download": build_download_worker}
        for queue in self.queues:
            pool = await connect(self.url)
            self.workers.append(
                builders[queue](self.settings, pool, handle_signals=handle_signals, burst=burst)
            )
        return self.workers

    async def start(self, *, burst: bool = False) -> Workers:
        """Run in this process; the caller stops them (`until_signalled` handles signals)."""
        try:
            built = await self.build(handle_signals=False, burst=burst)
        except BaseException:  # e.g. a signal while connecting: close the pools already open
            await self.stop()
            raise
        for worker in built:
            self.tasks.append(asyncio.create_task(_run(worker)))
        return self

    async def wait(self) -> None:
        """Until every worker ends (burst mode); a worker that fails raises its error."""
        pending = set(self.tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # e.g. its model would not load

    async def stop(self) -> None:
        """Running jobs are handed back to the queue by arq."""
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()

    async def race(self, work: Awaitable[T]) -> T:
        """Await ``work``; if a worker dies first (e.g. no model), raise its error."""
        job = asyncio.ensure_future(work)
        try:
            await asyncio.wait({job, *self.tasks}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # stopped by a signal: the work stops with us
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
            raise
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            for task in self.tasks:
                if task.done():
                    task.result()  # raises the worker's start-up error
            raise StartupError("an in-process worker stopped unexpectedly")
        return job.result()


async def _run(worker: Worker) -> None:
    """One worker until it ends; one that cannot start (e.g. no model) says why in a line."""
    from worker.main import WorkerStartupError

    with one_line(WorkerStartupError):
        await worker.async_run()


def _safe_url(url: str) -> str:
    """A Redis URL without its password, for messages."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def cmd_worker(settings: Settings, burst: bool, queues: tuple[str, ...]) -> int:
    async with redis_pool(settings, private_ok=False) as (_, url):
        # one signal handler for all the workers, in main() (arq's own would keep only the
        # last one's)
        workers = Workers(settings, url, queues)
        try:
            await workers.start(burst=burst)
            await workers.wait()
        finally:  # closing hands running jobs back to their queues
            await workers.stop()
    return 0


async def cmd_web(settings: Settings) -> int:
    from bots.web import run_web
    from shared import metrics
    from shared.health import service_checks
    from shared.storage import build_storage

    if settings.redis.redis_url is None:  # downloads only; nothing to check
        await run_web(settings, build_storage(settings))
        return 0
    async with redis_pool(settings, private_ok=False) as (redis, _):
        await run_web(
            settings,
            build_storage(settings),
            service_checks(redis, settings),
            metrics=partial(metrics.snapshot, redis, settings),
            redis=redis,
        )
    return 0


async def cmd_run(settings: Settings) -> int:
    """Workers, web server, and each bot whose token is set, in one process."""
    from bots.discord.settings import DiscordSettings
    from bots.telegram.settings import TelegramSettings
    from bots.web import run_web
    from shared import metrics
    from shared.health import service_checks
    from shared.storage import build_storage
    from stembot.demo import demo_split

    storage = build_storage(settings)
    tg, ds = TelegramSettings(), DiscordSettings()
    async with redis_pool(settings, private_ok=True) as (redis, url):
        workers = await Workers(settings, url).start()
        checks = service_checks(redis, settings)
        web = run_web(
            settings,
            storage,
            checks,
            metrics=partial(metrics.snapshot, redis, settings),
            redis=redis,
        )
        services = [asyncio.create_task(web, name="web")]
        if tg.telegram_token is not None:
            services.append(
                asyncio.create_task(telegram(settings, redis, storage, tg), name="telegram")
            )
        if ds.discord_token is not None:
            services.append(
                asyncio.create_task(discord(settings, redis, storage, ds), name="discord")
            )
        try:
            if len(services) == 1:
                log.warning(
                    "no bot token configured (STEMBOT_TELEGRAM_TOKEN, STEMBOT_DISCORD_TOKEN): "
                    "running the workers "
                    "and the web server on %s",
                    settings.storage.public_url,
                )
                await workers.race(demo_split(redis, storage, settings))
            await workers.race(first_to_end(services))
        finally:
            for task in services:
                task.cancel()
            await asyncio.gather(*services, return_exceptions=True)
            await workers.stop()
    return 0


async def first_to_end(tasks: list[asyncio.Task[None]]) -> None:
    """Wait until one of the services stops; raise its error if it failed."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()


async def telegram(
    settings: Settings, redis: ArqRedis, storage: Storage, tg: TelegramSettings
) -> None:
    """The Telegram bot, until it stops."""
    from bots.telegram.app import TelegramStartupError, run_telegram

    with one_line(TelegramStartupError):
        await run_telegram(settings, redis, storage, tg)


async def discord(
    settings: Settings,
    redis: ArqRedis,
    storage: Storage,
    ds: DiscordSettings,
    *,
    sync_commands: bool = False,
) -> None:
    """The Discord bot, until it stops."""
    from bots.discord.app import DiscordStartupError, run_discord

    with one_line(DiscordStartupError):
        await run_discord(settings, redis, storage, ds, sync_commands=sync_commands)


def bot_off(variable: str, platform: str) -> int:
    """A bot without its token is switched off, not broken: one line, and exit 0 so that
    `docker compose up -d` does not restart it over and over."""
    print(f"stembot: {variable} is not set: the {platform} bot is off", file=sys.stderr)
    return 0


async def cmd_telegram(settings: Settings) -> int:
    from bots.telegram.settings import TelegramSettings
    from shared.storage import build_storage

    tg = TelegramSettings()
    if tg.telegram_token is None or not tg.telegram_token.get_secret_value().strip():
        return bot_off("STEMBOT_TELEGRAM_TOKEN", "Telegram")
    async with redis_pool(settings, private_ok=False) as (redis, _):
        await telegram(settings, redis, build_storage(settings), tg)
    return 0


async def cmd_discord(settings: Settings, sync_commands: bool = False) -> int:
    from bots.discord.settings import DiscordSettings
    from shared.storage import build_storage

    ds = DiscordSettings()
    if ds.discord_token is None:
        return bot_off("STEMBOT_DISCORD_TOKEN", "Discord")
    async with redis_pool(settings, private_ok=False) as (redis, _):
        await discord(settings, redis, build_storage(settings), ds, sync_commands=sync_commands)
    return 0


async def cmd_split(settings: Settings, args: argparse.Namespace) -> int:
    from bots.split import SplitFailed, looks_like_url, result_lines, split_file
    from bots.split_mixes import mix_files, mix_lines, parse_all
    from shared.intake import build_options
    from shared.storage import build_storage

    if not looks_like_url(args.source) and not Path(args.source).is_file():
        # said at once, before a private Redis and the workers (with their model) start
        raise CommandError(f"No such file: {args.source}")
    options = build_options(settings, model=args.model, stems=args.stems, fmt=args.format)
    wanted = parse_all(options.model, args.mix)  # a --mix that does not fit: said at once too
    storage = build_storage(settings)
    async with redis_pool(settings, private_ok=True) as (redis, url):
        private = settings.redis.redis_url is None
        workers = await Workers(settings, url).start() if private else None
        try:
            work = split_file(
                redis=redis,
                storage=storage,
                settings=settings,
                source=args.source,
                options=options,
                out_dir=Path(args.out),
                progress=sys.stderr,
            )
            with one_line(SplitFailed):
                result, written = await (workers.race(work) if workers else work)
                mixing = mix_files(
                    redis=redis,
                    storage=storage,
                    settings=settings,
                    song=result,
                    wanted=wanted,
                    out_dir=Path(args.out),
                    progress=sys.stderr,
                )
                made = await (workers.race(mixing) if workers else mixing)
        finally:
            if workers is not None:
                await workers.stop()
    valid_h = settings.storage.link_ttl_h
    lines = result_lines(result, written, valid_h=valid_h) + mix_lines(made, valid_h=valid_h)
    print("\n".join(lines))
    return 0
