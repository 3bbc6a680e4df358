"""Writing to Telegram at a bounded rate.

Every message and edit the bot sends takes its turn in the bot's send budget, shared by all
its processes (shared.sendbudget): :class:`BudgetLimiter` is the Application's rate limiter,
so handlers' answers wait for it too (never dropped), and a RetryAfter holds the chat back for
every process. Progress edits come from delivery with their turn taken already (``prepaid``).
Edits of one message are at least ``telegram_edit_interval_s`` apart; a chat is held back as
long as Telegram's RetryAfter says. A message that cannot be edited (deleted, too old, the bot
blocked) is reported as False, not raised; RetryAfter and network errors are raised for the
caller to retry.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import secrets
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any

from redis.asyncio import Redis
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaAudio,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter, ExtBot

from bots.pacing import Pacer
from bots.telegram.settings import TelegramSettings
from shared.config import Settings
from shared.errors import SourceGone
from shared.schemas import JobResult, StemFile
from shared.sendbudget import Limit, SendBudget, bot_name
from shared.storage import Storage

log = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
EDIT_NOW_ATTEMPTS = 6


#: Bot API methods that post or change a message: what Telegram's limits count.
SENDS = ("send", "edit", "copy", "forward")
#: A private chat may take a few messages at once (Telegram allows short bursts).
PRIVATE_BURST = 3
#: ``rate_limit_args`` of an edit whose turn in the budget was taken already.
PREPAID = {"prepaid": True}


def seconds_of(period: int | float | dtm.timedelta) -> float:
    """RetryAfter.retry_after in seconds (python-telegram-bot gives int or timedelta)."""
    return period.total_seconds() if isinstance(period, dtm.timedelta) else float(period)


def chat_of(chat_id: object) -> Hashable:
    """A chat id as the budget knows it (the Bot API takes ints and strings)."""
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return chat_id if isinstance(chat_id, Hashable) else str(chat_id)


def telegram_budget(redis: Redis, tg: TelegramSettings, token: str) -> SendBudget:
    """The bot's send budget: Telegram's limits for the bot, a private chat and a group."""
    private = Limit(tg.telegram_chat_sends_per_s, 1.0, bursts=PRIVATE_BURST)
    group = Limit(tg.telegram_group_sends_per_min, 60.0)

    def chat_limit(chat: Hashable) -> Limit:
        return private if isinstance(chat, int) and chat > 0 else group  # groups: < 0

    return SendBudget(
        redis,
        "telegram",
        bot_name("telegram", token),
        bot_limit=Limit(tg.telegram_sends_per_s, 1.0),
        chat_limit=chat_limit,
    )


def messages_in(endpoint: str, data: dict[str, Any]) -> int:
    """How many messages a send posts: an album (sendMediaGroup) posts one per file."""
    media = data.get("media")
    if endpoint == "sendMediaGroup" and isinstance(media, list | tuple):
        return max(1, len(media))
    return 1


class BudgetLimiter(BaseRateLimiter[dict[str, bool]]):
    """The Application's rate limiter: each message the bot sends waits for its turn in the
    send budget, unless delivery took it (``rate_limit_args=PREPAID``)."""

    def __init__(self, budget: SendBudget) -> None:
        self.budget = budget

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        await self.budget.close()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, bool] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = chat_of(data.get("chat_id"))
        if endpoint.startswith(SENDS) and not (rate_limit_args or {}).get("prepaid"):
            for _ in range(messages_in(endpoint, data)):
                await self.budget.take(chat, urgent=True)
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            await self.budget.hold(chat, seconds_of(exc.retry_after))
            raise


class Messenger:
    def __init__(
        self,
        bot: Bot,
        tg: TelegramSettings,
        settings: Settings,
        storage: Storage,
        budget: SendBudget | None = None,
    ) -> None:
        self.bot, self.tg, self.settings, self.storage = bot, tg, settings, storage
        self.pacer = Pacer(tg.telegram_edit_interval_s)
        #: the bot's budget (its rate limiter takes each send from it), for delivery
        self.budget = budget

    @property
    def _limited(self) -> bool:
        return isinstance(self.bot, ExtBot) and self.bot.rate_limiter is not None

    def pause(self, chat_id: int, exc: RetryAfter) -> None:
        """Hold a chat back as long as Telegram's flood control asks."""
        self.pacer.pause(chat_id, seconds_of(exc.retry_after))

    # --- writing -------------------------------------------------------------------------

    async def edit(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None,
        *,
        prepaid: bool = False,
    ) -> bool:
        """Edit a message (HTML); False when it cannot be (deleted, too old, bot blocked).
        ``prepaid``: the edit's turn in the send budget was taken already."""
        extra = {"rate_limit_args": PREPAID} if prepaid and self._limited else {}
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=_NO_PREVIEW,
                **extra,  # type: ignore[arg-type]
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return True
            log.info("telegram: cannot edit a status message: %s", exc.message)
            return False
        except Forbidden as exc:
            log.info("telegram: not allowed to write to a chat: %s", exc.message)
            return False
        finally:
            self.pacer.hold(chat_id, message_id)
        return True

    async def edit_now(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """Edit as soon as allowed, waiting out flood control; never raises a Telegram error."""
        for attempt in range(1, EDIT_NOW_ATTEMPTS + 1):
            await self.pacer.wait_turn(chat_id, message_id)
            try:
                await self.edit(chat_id, message_id, text, markup)
                return
            except RetryAfter as exc:
                self.pause(chat_id, exc)
            except NetworkError as exc:  # BadRequest and Forbidden are handled by edit()
                log.warning("telegram: edit failed (%s), retrying", type(exc).__name__)
                self.pacer.hold(chat_id, message_id, 2.0**attempt)
        log.error("telegram: gave up editing a status message")

    async def send(self, chat_id: int, text: str) -> None:
        """Post a new message (HTML) where the status message cannot be edited any more."""
        try:
            await self.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, link_preview_options=_NO_PREVIEW
            )
        except (BadRequest, Forbidden) as exc:
            log.info("telegram: cannot post to a chat: %s", exc.message)

    async def send_stems(
        self, chat_id: int, reply_to: int, result: JobResult, stems: Sequence[StemFile]
    ) -> bool:
        """Send stems as audio files answering ``reply_to``: two to ten as one album, one
        alone. False when Telegram refused the album as too large as a whole (then send them
        one by one); a stem that expired meanwhile is left out (the links say so too)."""
        found = [(stem, await self._read_stem(result, stem)) for stem in stems]
        files = [(stem, data) for stem, data in found if data is not None]
        if not files:
            return True
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True)
        try:
            if len(files) == 1:
                [(stem, data)] = files
                filename, title = _names(result, stem)
                await self.bot.send_audio(
                    chat_id, audio=data, filename=filename, title=title, reply_parameters=reply
                )
            else:
                media = []
                for stem, data in files:
                    filename, title = _names(result, stem)
                    media.append(InputMediaAudio(data, filename=filename, title=title))
                await self.bot.send_media_group(chat_id, media, reply_parameters=reply)
        except (BadRequest, Forbidden) as exc:
            log.info("telegram: cannot send the stems: %s", exc.message)
        except NetworkError as exc:
            if len(files) == 1 or not _too_large(exc):
                raise
            log.info("telegram: an album of %d stems is too large, sending them apart", len(files))
            return False
        return True

    async def _read_stem(self, result: JobResult, stem: StemFile) -> bytes | None:
        """A stem's bytes from storage; None when it expired meanwhile (the links say so too)."""
        tmp = self.settings.storage.storage_dir / "tmp" / f"telegram-{secrets.token_hex(6)}"
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            await self.storage.fetch_job_file(result.key, stem.filename, tmp)
            return await asyncio.to_thread(tmp.read_bytes)
        except SourceGone:
            return None
        finally:
            await asyncio.to_thread(tmp.unlink, True)


def _names(result: JobResult, stem: StemFile) -> tuple[str, str]:
    """A stem's file name and audio title in the chat: "My Song - drums.mp3", "My Song (drums)"."""
    ext = stem.filename.rsplit(".", 1)[-1]
    title = "".join(c if c.isprintable() and c not in '/\\"' else "_" for c in result.title)
    return f"{title} - {stem.name}.{ext}", f"{result.title} ({stem.name})"


def _too_large(exc: NetworkError) -> bool:
    """Telegram's 413 Request Entity Too Large (python-telegram-bot raises it as a network
    error, as for any status it has no exception of its own for)."""
    return "413" in exc.message or "too large" in exc.message.lower()
