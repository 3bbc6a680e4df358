"""Telegram's side of progress delivery (see bots.delivery): the status message is a chat
message the bot edits; at the end it gets a button that opens the player, and the stems that
fit Telegram's upload limit follow as one audio album.
"""

from __future__ import annotations

from typing import ClassVar

from redis.asyncio import Redis
from telegram import InlineKeyboardMarkup
from telegram.error import NetworkError, RetryAfter

from bots import delivery
from bots.delivery import Delivery, Parts, stream_of
from bots.telegram.messenger import Messenger, seconds_of
from bots.telegram.render import cancel_markup, final_markup, final_text, progress_text
from bots.telegram.settings import TelegramSettings
from bots.telegram.store import Store
from shared.i18n import texts
from shared.schemas import JobRequest, JobState, ProgressEvent, StemFile, TelegramReply

PLATFORM = "telegram"
STREAM = stream_of(PLATFORM)
GROUP = PLATFORM  # bots.delivery reads a platform's stream in a group of its name
#: Telegram's largest album.
ALBUM_FILES = 10
#: The most bytes of stems in one album: what the bot holds in memory to send one at once.
ALBUM_BYTES = 200 * 1024 * 1024


def albums(stems: list[StemFile]) -> list[list[StemFile]]:
    """The stems in order, in albums of up to :data:`ALBUM_FILES` files and
    :data:`ALBUM_BYTES` (an album of one is sent as a lone audio file)."""
    found: list[list[StemFile]] = []
    size = 0
    for stem in stems:
        if not found or len(found[-1]) == ALBUM_FILES or size + stem.size_bytes > ALBUM_BYTES:
            found.append([])
            size = 0
        found[-1].append(stem)
        size += stem.size_bytes
    return found


class Status(TelegramReply, delivery.Status):
    """A Telegram request's status message: a chat message the bot edits."""

    chat_field: ClassVar[str] = "chat_id"


class TelegramPresenter:
    platform = PLATFORM

    def __init__(self, store: Store, out: Messenger, tg: TelegramSettings) -> None:
        self.store, self.out, self.tg = store, out, tg

    def target_of(self, request: JobRequest) -> Status | None:
        return Status.of(request)

    async def progress(self, status: Status, event: ProgressEvent, shown: object) -> object:
        t = texts(status.lang)
        text = progress_text(t, status.title, event)
        if text != shown:
            markup = cancel_markup(t)
            await self.out.edit(status.chat_id, status.message_id, text, markup, prepaid=True)
        return text

    async def final(self, status: Status, event: ProgressEvent, parts: Parts) -> None:
        files = self.tg.telegram_send_audio and status.files
        result = event.result if event.state == JobState.DONE else None
        if "text" not in parts:
            t = texts(status.lang)
            upload_limit = self.tg.upload_limit_bytes() if files else None
            text = final_text(t, status.title, event, upload_limit)
            markup = final_markup(t, result, status.chat_id) if result is not None else None
            if not await self._edit_final(status, text, markup):
                await self.out.send(status.chat_id, text)  # it is gone: never lose the end
            await parts.mark("text")
        if result is None or not files:
            return
        fitting = [s for s in result.stems if s.size_bytes <= self.tg.upload_limit_bytes()]
        for number, album in enumerate(albums(fitting)):
            if f"album:{number}" in parts:
                continue
            chat, reply_to = status.chat_id, status.message_id
            if not await self.out.send_stems(chat, reply_to, result, album):
                for stem in album:  # too large for Telegram as one request: one by one
                    if f"audio:{stem.name}" not in parts:
                        await self.out.send_stems(chat, reply_to, result, [stem])
                        await parts.mark(f"audio:{stem.name}")
            await parts.mark(f"album:{number}")

    async def _edit_final(
        self, status: Status, text: str, markup: InlineKeyboardMarkup | None
    ) -> bool:
        """Show the end on the status message; False when it is gone. A button Telegram
        refuses (a page URL it does not take) is left off: the end matters more."""
        if await self.out.edit(status.chat_id, status.message_id, text, markup):
            return True
        return markup is not None and await self.out.edit(
            status.chat_id, status.message_id, text, None
        )

    async def finished(self, status: Status) -> None:
        await self.store.forget(status.user_id, status.request_id)

    def retry_after(self, exc: Exception) -> float | None:
        return seconds_of(exc.retry_after) if isinstance(exc, RetryAfter) else None

    def transient(self, exc: Exception) -> bool:
        return isinstance(exc, NetworkError)


def telegram_delivery(
    redis: Redis, store: Store, out: Messenger, tg: TelegramSettings
) -> Delivery[Status]:
    queues = out.settings.redis
    return Delivery(
        redis,
        TelegramPresenter(store, out, tg),
        out.pacer,
        budget=out.budget,
        name=tg.bot_instance,
        queues=(queues.queue_name, queues.download_queue_name),
        place_interval_s=tg.bot_place_interval_s,
        claim_after_s=tg.bot_claim_after_s,
    )
