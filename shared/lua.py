"""The one way our Lua scripts run in Redis: by SHA, loaded when the server does not know it.

A script is a module constant (``_SUBMIT = LuaScript("...")``) called with the client the
entrypoint built (``await _SUBMIT(redis, keys, args)``), so no client is held globally, and
each call sends only the script's SHA1 (EVALSHA), not its text. Redis forgets its scripts when
it restarts or fails over (the script cache is not persisted) and on ``SCRIPT FLUSH``; the
first call after that gets NOSCRIPT, loads the script once (SCRIPT LOAD) and runs it again.
This is what redis-py's ``register_script`` does, without binding the script to one client.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)


class LuaScript:
    """A Lua script run by its SHA (cheap), loaded on each server that does not know it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"LuaScript({self.sha[:12]})"

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[str]) -> Any:
        """Run the script with ``KEYS`` and ``ARGV``; its reply as redis-py decodes it."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            log.info("loading Lua script %s into Redis", self.sha[:12])
            await redis.script_load(self.text)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
