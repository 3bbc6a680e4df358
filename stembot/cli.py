"""The `stembot` command: builds the dependencies and hands them to each process.

stembot worker            run the separation and download workers (needs STEMBOT_REDIS_URL)
stembot web               run the web server (downloads, health)
stembot split FILE ...    split one song through the queue and a worker, write the stems
stembot telegram          run the Telegram bot (needs STEMBOT_TELEGRAM_TOKEN)
stembot discord           run the Discord bot (needs STEMBOT_DISCORD_TOKEN)
stembot run               worker + web (+ each bot whose token is set) in one process
stembot models pull NAME  fetch Demucs weights from the HuggingFace hub (once per model)
stembot models demo DIR   write random-weight models to try everything offline

Each command imports what it runs when it runs (stembot/services.py, model_commands.py):
`stembot --help` or `stembot discord` does not load torch, `stembot models pull` not the bots.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from shared.config import Settings, get_settings
from shared.errors import StembotError
from shared.logs import setup_logging
from shared.models import MODELS
from stembot import QUEUES
from stembot.errors import CommandError

if TYPE_CHECKING:
    from worker.resilience import Stopped


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
    split.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="STEMS",
        help="also write these stems mixed into one file: names separated by commas "
        "(bass,drums) or every stem but one (no_drums; no_vocals = karaoke); may be repeated",
    )
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
    try:
        if args.command == "models":
            return asyncio.run(models_command(settings, args))
        return run_service(args.command, service_command(settings, args))
    except CommandError as exc:
        print(f"stembot: {exc}", file=sys.stderr)
        return 1
    except StembotError as exc:
        print(f"stembot: {exc.user_message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def models_command(settings: Settings, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from stembot.model_commands import cmd_models_demo, cmd_models_pull

    if args.models_command == "demo":
        return cmd_models_demo(args)
    return cmd_models_pull(settings, args)


def service_command(settings: Settings, args: argparse.Namespace) -> Coroutine[Any, Any, int]:
    from stembot import services

    commands: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
        "worker": lambda: services.cmd_worker(settings, args.burst, tuple(args.queues or QUEUES)),
        "web": lambda: services.cmd_web(settings),
        "run": lambda: services.cmd_run(settings),
        "telegram": lambda: services.cmd_telegram(settings),
        "discord": lambda: services.cmd_discord(settings, args.sync_commands),
        "split": lambda: services.cmd_split(settings, args),
    }
    return commands[args.command]()


def run_service(command: str, run: Coroutine[Any, Any, int]) -> int:
    """Until it ends, or SIGTERM/SIGINT: jobs handed back, a private Redis stopped."""
    from worker.resilience import Stopped, until_signalled

    try:
        return asyncio.run(until_signalled(run))
    except Stopped as exc:
        return stopped(command, exc)


if __name__ == "__main__":
    sys.exit(main())
