"""Telegram's side of progress delivery (see bots.delivery): the status message is a chat
message the bot edits; at the end each stem that fits Telegram's upload limit follows as audio.
"""

from __future__ import annotations

from typing import ClassVar

from redis.asyncio import Redis
from telegram.error import NetworkError, RetryAfter

from bots import delivery
from bots.delivery import Delivery, Parts, stream_of
from bots.telegram.messenger import Messenger, seconds_of
from bots.telegram.render import cancel_markup, final_text, progress_text
from bots.telegram.settings import TelegramSettings
from bots.telegram.store import Store
from shared.i18n import texts
from shared.schemas import JobRequest, JobState, ProgressEvent, TelegramReply

PLATFORM = "telegram"
STREAM = stream_of(PLATFORM)
GROUP = PLATFORM  # bots.delivery reads a platform's stream in a group of its name


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
        if "text" not in parts:
            upload_limit = self.tg.upload_limit_bytes() if files else None
            text = final_text(texts(status.lang), status.title, event, upload_limit)
            if not await self.out.edit(status.chat_id, status.message_id, text, None):
                await self.out.send(status.chat_id, text)  # it is gone: never lose the end
            await parts.mark("text")
        result = event.result
        if event.state == JobState.DONE and result is not None and files:
            for stem in result.stems:
                if f"audio:{stem.name}" not in parts:
                    await self.out.send_stem(status.chat_id, status.message_id, result, stem)
                    await parts.mark(f"audio:{stem.name}")

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
