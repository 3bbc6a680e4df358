"""How a `stembot` command fails: one readable line and exit 1, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class CommandError(Exception):
    """A readable one-line reason the command failed (exit 1)."""


class StartupError(CommandError):
    """A readable one-line reason the process cannot start."""


@contextlib.contextmanager
def one_line(*errors: type[Exception]) -> Iterator[None]:
    """``errors`` of the layers below end the command with their own message.

    Each command names the errors of the modules it imports (lazily: `stembot models pull`
    does not load the bots), so that `main` need not import them all to catch them.
    """
    try:
        yield
    except errors as exc:
        raise CommandError(str(exc)) from exc
