"""One way for a test to wait: re-check a condition until it holds, or fail saying what for.

Tests never sleep a fixed time hoping something happened; they wait on what they can see (a
recorded call, Redis state, a log line, a process) with :func:`until`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

#: The longest sleep between two checks.
EVERY_S = 0.005


@overload
async def until(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float = ...,
    what: str = ...,
    every_s: float = ...,
) -> T: ...
@overload
async def until(
    check: Callable[[], T | None],
    *,
    timeout_s: float = ...,
    what: str = ...,
    every_s: float = ...,
) -> T: ...
async def until(
    check: Callable[[], object],
    *,
    timeout_s: float = 30,
    what: str = "",
    every_s: float = EVERY_S,
) -> Any:
    """Check ``check()`` (sync or async) on each loop turn until its value is truthy; return
    that value. After ``timeout_s`` the test fails with "timed out waiting for <what>"."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = check()
                if inspect.isawaitable(found):
                    found = await found
                if found:
                    return found
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise AssertionError(
            f"timed out waiting for {what or getattr(check, '__name__', check)} ({timeout_s} s)"
        ) from None
