"""`stembot ARGS` as the operator starts it, or run in the test's own process.

Starting the installed command costs seconds (Python, then torch) on busy cores. A few tests
start it (:func:`installed`), and so prove the process boundary: the entry point, the
environment read at start. The others call the same :func:`stembot.cli.main` here
(:func:`in_process`) as a fresh process would run it: with the environment, working folder,
settings and logging given to it alone, and huggingface_hub's configuration (which it reads
from the environment when imported) recomputed from that environment. All of it is put back
afterwards; what ``main`` writes to stdout and stderr is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.constants

from shared.config import get_settings
from stembot.cli import main

STEMBOT = str(Path(sys.executable).with_name("stembot"))


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def run_main(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """`stembot ARGS` in this thread, which must run no event loop (``main`` runs its own)."""
    out, err = io.StringIO(), io.StringIO()
    with fresh_process(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    return Ran(code, out.getvalue(), err.getvalue())


async def in_process(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """:func:`run_main` in a thread, so that the test's loop keeps serving (a fake server)."""
    return await asyncio.to_thread(run_main, *args, env=env, cwd=cwd)


async def installed(*args: str, env: dict[str, str], cwd: Path, timeout_s: float = 120) -> Ran:
    """The installed command in its own process, without blocking the test's loop."""
    proc = await asyncio.create_subprocess_exec(
        STEMBOT, *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(timeout_s):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


@contextlib.contextmanager
def fresh_process(env: dict[str, str], cwd: Path) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    root = logging.getLogger()
    saved_handlers, saved_levels = list(root.handlers), _levels()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    importlib.reload(huggingface_hub.constants)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        importlib.reload(huggingface_hub.constants)
        get_settings.cache_clear()
        root.handlers[:] = saved_handlers
        for name, level in saved_levels.items():
            (logging.getLogger(name) if name else root).setLevel(level)


def _levels() -> dict[str, int]:
    """Every logger's own level ("" for the root), which ``main`` sets for its command."""
    levels = {"": logging.getLogger().level}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            levels[name] = logger.level
    return levels
