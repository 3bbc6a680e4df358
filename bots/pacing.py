"""When a bot process may edit a status message: its own pace per message, and the chats a
platform's rate limit holds back (the send budget shared by all processes of a bot is
shared.sendbudget)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable

log = logging.getLogger("bots.delivery")


class Pacer:
    """When each status message may be edited next, and which chats are held back."""

    def __init__(self, edit_interval_s: float) -> None:
        self.edit_interval_s = edit_interval_s
        self._next_edit: dict[tuple[Hashable, Hashable], float] = {}
        self._chat_pause: dict[Hashable, float] = {}

    async def wait_turn(self, chat: Hashable, message: Hashable) -> None:
        """Until this message may be edited again and its chat is not held back."""
        while True:
            now = time.monotonic()
            until = max(self._next_edit.get((chat, message), 0.0), self._chat_pause.get(chat, 0.0))
            if until <= now:
                return
            await asyncio.sleep(until - now)

    def pause(self, chat: Hashable, seconds: float) -> None:
        """Hold a chat back as long as the platform's rate limit asks."""
        log.info("rate limited: waiting %.1f s before writing to a chat", seconds)
        until = time.monotonic() + seconds
        self._chat_pause[chat] = max(until, self._chat_pause.get(chat, 0.0))

    def hold(self, chat: Hashable, message: Hashable, seconds: float | None = None) -> None:
        """Edit this message no sooner than ``seconds`` (default: the edit interval) from now."""
        delay = self.edit_interval_s if seconds is None else seconds
        self._next_edit[(chat, message)] = time.monotonic() + delay

    def release(self, chat: Hashable, message: Hashable) -> None:
        """Forget a message's pacing (it will not be edited again)."""
        self._next_edit.pop((chat, message), None)
        if self._chat_pause.get(chat, 0.0) < time.monotonic():
            self._chat_pause.pop(chat, None)
