"""`stembot models pull` and `stembot models demo`: the Demucs weights the workers load.

Imported only by these commands: none of them needs Redis, the bots or the web server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from functools import partial
from pathlib import Path

from demucs.repo import ModelLoadingError

from shared.config import Settings
from shared.models import MODELS
from stembot.errors import CommandError, StartupError, one_line
from worker.hub import Hub
from worker.models import Catalog, PullError, pull


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
            raise CommandError(str(exc)) from None
    return 0


async def cmd_models_pull_legacy(settings: Settings, args: argparse.Namespace) -> int:
    """Pickled weights from demucs' old download site into a local model folder."""
    repo = Path(args.dir) if args.dir else settings.separation.model_repo
    if repo is None:
        raise StartupError(
            "no model folder: set STEMBOT_MODEL_REPO (the folder the workers load models "
            "from) or pass --dir"
        )
    with one_line(PullError):
        catalog = Catalog.load(Path(args.catalog) if args.catalog else None)
        await pull(
            args.names,
            repo,
            settings.separation.model_base_url,
            catalog=catalog,
            out=sys.stderr,
            allow_pickled=settings.separation.allow_pickled_weights,
        )
    return 0


async def cmd_models_demo(args: argparse.Namespace) -> int:
    """Random-weight models of the real architectures, for trying everything offline."""
    from worker.demo_models import write_model_repo

    folder = Path(args.dir)
    await asyncio.to_thread(write_model_repo, folder)
    print(
        f"demo models ({', '.join(MODELS)}; random weights: the stems are noise) in {folder}: "
        f"run with STEMBOT_MODEL_REPO={folder}",
        file=sys.stderr,
    )
    return 0
