"""The `stembot` command: builds the dependencies and hands them to each process.

stembot worker            run the separation and download workers (needs STEMBOT_REDIS_URL)
stembot web               run the web server (downloads, health)
stembot split FILE ...    split one song through the queue and a worker, write the stems
stembot telegram          run the Telegram bot (needs STEMBOT_TELEGRAM_TOKEN)
stembot discord           run the Discord bot (needs STEMBOT_DISCORD_TOKEN)
stembot run               worker + web (+ each bot whose token is set) in one process
stembot models pull NAME  fetch Demucs weights from the HuggingFace hub (once per model)
stembot models demo DIR   write random-weight models to try everything offline
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
from typing import TypeVar

from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from demucs.repo import ModelLoadingError
from redis.exceptions import RedisError

from bots.discord.app import DiscordStartupError, run_discord
from bots.discord.settings import DiscordSettings
from bots.split import SplitFailed, result_lines, split_file
from bots.telegram.app import TelegramStartupError, run_telegram
from bots.telegram.settings import TelegramSettings
from bots.web import run_web
from shared import metrics
from shared.config import Settings, get_settings
from shared.errors import StembotError
from shared.health import service_checks
from shared.intake import build_options
from shared.logs import setup_logging
from shared.models import MODELS
from shared.redis_server import PrivateRedis
from shared.storage import build_storage
from stembot.demo import demo_split
from worker.demo_models import write_model_repo
from worker.hub import Hub
from worker.main import WorkerStartupError, build_download_worker, build_worker
from worker.models import Catalog, PullError, pull
from worker.resilience import Stopped, until_signalled

log = logging.getLogger("stembot")
T = TypeVar("T")
QUEUES = ("separate", "download")


class StartupError(Exception):
    """A readable one-line reason the process cannot start."""


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
            self.tasks.append(asyncio.create_task(worker.async_run()))
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
                asyncio.create_task(run_telegram(settings, redis, storage, tg), name="telegram")
            )
        if ds.discord_token is not None:
            services.append(
                asyncio.create_task(run_discord(settings, redis, storage, ds), name="discord")
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


def bot_off(variable: str, platform: str) -> int:
    """A bot without its token is switched off, not broken: one line, and exit 0 so that
    `docker compose up -d` does not restart it over and over."""
    print(f"stembot: {variable} is not set: the {platform} bot is off", file=sys.stderr)
    return 0


async def cmd_telegram(settings: Settings) -> int:
    tg = TelegramSettings()
    if tg.telegram_token is None or not tg.telegram_token.get_secret_value().strip():
        return bot_off("STEMBOT_TELEGRAM_TOKEN", "Telegram")
    async with redis_pool(settings, private_ok=False) as (redis, _):
        await run_telegram(settings, redis, build_storage(settings), tg)
    return 0


async def cmd_discord(settings: Settings, sync_commands: bool = False) -> int:
    ds = DiscordSettings()
    if ds.discord_token is None:
        return bot_off("STEMBOT_DISCORD_TOKEN", "Discord")
    async with redis_pool(settings, private_ok=False) as (redis, _):
        storage = build_storage(settings)
        await run_discord(settings, redis, storage, ds, sync_commands=sync_commands)
    return 0


async def cmd_split(settings: Settings, args: argparse.Namespace) -> int:
    options = build_options(settings, model=args.model, stems=args.stems, fmt=args.format)
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
            result, written = await (workers.race(work) if workers else work)
        finally:
            if workers is not None:
                await workers.stop()
    print("\n".join(result_lines(result, written, valid_h=settings.storage.link_ttl_h)))
    return 0


async def cmd_models_pull(settings: Settings, args: argparse.Namespace) -> int:
    """Fetch the named models' weights where the workers load them from."""
    sep = settings.separation
    if args.legacy:
        return await cmd_models_pull_legacy(settings, args)
    if args.dir or args.catalog:
        raise StartupError("--dir and --catalog go with --legacy (the hub's files go to HF_HOME)")
    if sep.model_repo is not None:
        raise StartupError(
            f"STEMBOT_MODEL_REPO is set ({sep.model_repo}): the workers load that folder, not "
            "the models pulled from the hub; unset it to use them"
        )
    unknown = [name for name in args.names if name not in MODELS]
    if unknown:
        raise StartupError(f"unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
    hub = Hub(sep.model_revisions)
    # huggingface_hub warns on its own handler; the one-line error says it
    logging.getLogger("huggingface_hub").setLevel(logging.CRITICAL)
    for name in dict.fromkeys(args.names):
        try:
            await asyncio.to_thread(hub.pull, name, partial(print, file=sys.stderr, flush=True))
        except ModelLoadingError as exc:  # the hub's, or a file failing its hash
            raise PullError(str(exc)) from None
    return 0


async def cmd_models_pull_legacy(settings: Settings, args: argparse.Namespace) -> int:
    """Pickled weights from demucs' old download site into a local model folder."""
    repo = Path(args.dir) if args.dir else settings.separation.model_repo
    if repo is None:
        raise StartupError(
            "no model folder: set STEMBOT_MODEL_REPO (the folder the workers load models "
            "from) or pass --dir"
        )
    catalog = Catalog.load(Path(args.catalog) if args.catalog else None)
    await pull(
        args.names,
        repo,
        settings.separation.model_base_url,
        catalog=catalog,
        allow_pickled=settings.separation.allow_pickled_weights,
    )
    return 0


async def cmd_models_demo(args: argparse.Namespace) -> int:
    """Random-weight models of the real architectures, for trying everything offline."""
    folder = Path(args.dir)
    await asyncio.to_thread(write_model_repo, folder)
    print(
        f"demo models ({', '.join(MODELS)}; random weights: the stems are noise) in {folder}: "
        f"run with STEMBOT_MODEL_REPO={folder}",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stembot", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a separation worker")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--queue",
        action="append",
        choices=QUEUES,
        dest="queues",
        help="which queue(s) to work on (default: both; e.g. download-only hosts)",
    )
    sub.add_parser("web", help="run the web server")
    sub.add_parser("run", help="run worker, web server and configured bots")
    sub.add_parser("telegram", help="run the Telegram bot (needs STEMBOT_TELEGRAM_TOKEN)")
    discord_cmd = sub.add_parser(
        "discord", help="run the Discord bot (needs STEMBOT_DISCORD_TOKEN)"
    )
    discord_cmd.add_argument(
        "--sync-commands",
        action="store_true",
        help="send the slash commands to Discord now (default: only when they changed)",
    )
    split = sub.add_parser("split", help="split one audio/video file into stems")
    split.add_argument("source", help="audio or video file, or a YouTube link")
    split.add_argument("--model", choices=MODELS, default=None)
    split.add_argument(
        "--stems",
        default="all",
        choices=["all", "vocals", "drums", "bass", "other", "guitar", "piano"],
        help="all stems, or one stem plus the rest mixed (e.g. vocals = karaoke)",
    )
    split.add_argument("--format", default="mp3", choices=["mp3", "flac", "wav"])
    split.add_argument("--out", default="out", help="folder for the stems (default: out)")
    models = sub.add_parser("models", help="manage the Demucs weights")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    pull_cmd = models_sub.add_parser(
        "pull",
        help="download models from the HuggingFace hub into its cache (HF_HOME), verified "
        "(skips what is there)",
    )
    pull_cmd.add_argument("names", nargs="+", metavar="NAME", help=", ".join(MODELS))
    pull_cmd.add_argument(
        "--legacy",
        action="store_true",
        help="pickled .th files from demucs' old download site (STEMBOT_MODEL_BASE_URL) into "
        "STEMBOT_MODEL_REPO instead; needs STEMBOT_ALLOW_PICKLED_WEIGHTS=true",
    )
    pull_cmd.add_argument("--dir", help="--legacy: model folder (default: STEMBOT_MODEL_REPO)")
    pull_cmd.add_argument(
        "--catalog",
        help="--legacy: folder in demucs' remote format (files.txt, NAME.yaml) for your own "
        "models on a mirror (default: the one shipped with demucs)",
    )
    demo_cmd = models_sub.add_parser(
        "demo", help="write random-weight models (the real architectures) for offline tries"
    )
    demo_cmd.add_argument("dir", metavar="DIR", help="folder to write; then STEMBOT_MODEL_REPO=DIR")
    return parser


def stopped(command: str, exc: Stopped) -> int:
    """A service stopped by a signal ends as asked (exit 0, as systemd and Docker expect); a
    split did not finish (128 + the signal's number, as a shell reports it)."""
    if command == "split":
        print(f"stembot: stopped by {exc} before the split finished", file=sys.stderr)
        return 128 + exc.signum
    print(f"stembot: stopped by {exc}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:  # pydantic's ValidationError: a bad STEMBOT_* value
        print(f"stembot: invalid settings: {exc}", file=sys.stderr)
        return 2
    # the progress lines and one-line errors say it all
    quiet = args.command in ("split", "models")
    setup_logging("CRITICAL" if quiet else settings.log.log_level, json_lines=settings.log.log_json)
    if quiet:
        logging.getLogger("arq").setLevel(logging.CRITICAL)
    commands = {
        "worker": lambda: cmd_worker(settings, args.burst, tuple(args.queues or QUEUES)),
        "web": lambda: cmd_web(settings),
        "run": lambda: cmd_run(settings),
        "telegram": lambda: cmd_telegram(settings),
        "discord": lambda: cmd_discord(settings, args.sync_commands),
        "split": lambda: cmd_split(settings, args),
        "models": lambda: (
            cmd_models_demo(args)
            if args.models_command == "demo"
            else cmd_models_pull(settings, args)
        ),
    }
    run = commands[args.command]()
    if args.command != "models":  # SIGTERM/SIGINT: jobs handed back, a private Redis stopped
        run = until_signalled(run)
    try:
        return asyncio.run(run)
    except Stopped as exc:
        return stopped(args.command, exc)
    except (
        StartupError,
        SplitFailed,
        PullError,
        WorkerStartupError,
        TelegramStartupError,
        DiscordStartupError,
    ) as exc:
        print(f"stembot: {exc}", file=sys.stderr)
        return 1
    except StembotError as exc:
        print(f"stembot: {exc.user_message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
