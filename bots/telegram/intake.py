"""From a Telegram message to a job: find the song, answer at once, ask for a mode, submit.

Every rule about the song itself (size cap while reading, probing, length, YouTube links,
reuse and joining) is the core's (shared.intake); this module adds only Telegram's own limit
on what bots may download and the conversation around it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, User
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError

from bots.telegram.delivery import Status
from bots.telegram.deps import BotDeps
from bots.telegram.messenger import seconds_of
from bots.telegram.render import (
    choose_mode_text,
    fetching_text,
    head,
    mode_markup,
    progress_text,
)
from bots.telegram.store import Mode, Pending
from bots.telegram.texts import user_texts
from shared.core import Accepted, Link, Requester, Song, Upload
from shared.errors import InternalError, StembotError
from shared.formatting import title_from_filename
from shared.i18n import Texts, texts
from shared.intake import build_options, file_chunks
from shared.models import SIX_STEM_MODEL
from shared.schemas import JobState, ProgressEvent, TelegramReply
from shared.youtube import find_url, find_youtube_url, parse_youtube_url

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MB = 1024 * 1024
#: How the Bot API says that getFile will not hand over a file this large.
FILE_TOO_BIG = re.compile("too big", re.IGNORECASE)


class TooBigForTelegram(Exception):
    """Telegram's cloud Bot API will not hand the bot a file this large."""

    def __init__(self, size_bytes: int | None, limit_bytes: int) -> None:
        super().__init__("file over the Bot API download limit")
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


@dataclass(frozen=True)
class Found:
    """The song a message holds, as Telegram describes it."""

    title: str
    file_id: str | None = None
    file_size: int | None = None
    filename: str | None = None
    url: str | None = None
    #: the type a document declares (audio, voice and video messages are media by kind)
    mime_type: str | None = None


def find_song(message: Message | None, extra: str | None, t: Texts) -> Found | None:
    """The song in a message (a file with sound, or a YouTube link), or None.

    Raises the core's rejection for a link that is not a single YouTube video.
    """
    link_text = extra or (message.text or message.caption if message else None)
    if message is not None:
        if message.audio:
            a = message.audio
            name = a.file_name or f"{a.title or 'audio'}.mp3"
            return Found(title_from_filename(name), a.file_id, a.file_size, name)
        if message.voice:
            v = message.voice
            title = t._("Voice message")
            return Found(title, v.file_id, v.file_size, f"{title}.ogg")
        if message.video or message.video_note:
            medium = message.video or message.video_note
            assert medium is not None
            name = getattr(medium, "file_name", None) or "video.mp4"
            return Found(title_from_filename(name), medium.file_id, medium.file_size, name)
        if message.document:
            d = message.document
            name = d.file_name or "file"
            return Found(title_from_filename(name), d.file_id, d.file_size, name, None, d.mime_type)
    url = find_youtube_url(link_text or "") or find_url(link_text or "")
    if url is None:
        return None
    video_id = parse_youtube_url(url)
    return Found(t._("YouTube video {video_id}", video_id=video_id), url=url)


def precheck(deps: BotDeps, song: Found) -> None:
    """Refuse by what Telegram declares, before downloading anything: the core's rules, with
    Telegram's own download limit before our size limit (it is the one that binds)."""
    deps.core.precheck(song.mime_type, None)
    tg_limit = deps.tg.download_limit_bytes()
    if song.file_size is not None and tg_limit is not None and song.file_size > tg_limit:
        raise TooBigForTelegram(song.file_size, tg_limit)
    deps.core.precheck(None, song.file_size)


def rejection_text(t: Texts, exc: StembotError | TooBigForTelegram) -> str:
    """Why a song was refused, in the user's language (HTML)."""
    if isinstance(exc, TooBigForTelegram):
        limit = t.number(exc.limit_bytes // MB)
        if exc.size_bytes is None:
            reason = t._(
                "That file is too big for Telegram to hand to bots (they get files up to "
                "{limit_mb} MB only). Send me a YouTube link to the song instead, or a shorter "
                "or more compressed file (mp3, m4a).",
                limit_mb=limit,
            )
        else:
            reason = t._(
                "That file is {size}, but Telegram lets bots download files up to {limit_mb} MB "
                "only. Send me a YouTube link to the song instead, or a shorter or more "
                "compressed file (mp3, m4a).",
                size=t.megabytes(exc.size_bytes),
                limit_mb=limit,
            )
        return "❌ " + reason
    return "❌ " + escape(exc.message(t))


async def accept(
    deps: BotDeps, reply_to: Message, source: Message | None, extra: str | None, user: User
) -> None:
    """Answer a song at once: ask for a mode, or go ahead with the user's saved defaults."""
    prefs = await deps.store.prefs(user.id)
    t = user_texts(user.language_code, prefs.lang)
    try:
        song = find_song(source, extra, t)
        if song is None:
            if reply_to.chat.type == "private":
                answer = t._("Send me an audio file, a voice message, a video or a YouTube link.")
            else:
                answer = t._(
                    "Reply to a message with a song with /stem, or send /stem followed by a "
                    "YouTube link."
                )
            await reply_html(reply_to, answer)
            return
        precheck(deps, song)
    except (StembotError, TooBigForTelegram) as exc:
        await reply_html(reply_to, rejection_text(t, exc))
        return
    pending = Pending(
        user_id=user.id,
        chat_id=reply_to.chat_id,
        lang=t.lang,
        title=song.title,
        file_id=song.file_id,
        file_size=song.file_size,
        filename=song.filename,
        url=song.url,
    )
    if prefs.mode == "ask":
        status = await reply_html(reply_to, choose_mode_text(t, song.title), mode_markup(t))
        await deps.store.save_pending(reply_to.chat_id, status.message_id, pending)
        return
    status = await reply_html(reply_to, _fetching(pending) if song.file_id else _waiting(pending))
    await start_job(deps, pending, prefs.mode, status.message_id, fetched_shown=True)


async def choose_mode(deps: BotDeps, query: CallbackQuery, mode: Mode) -> None:
    """A mode button under a song: submit it (once, and only for the person who sent it)."""
    message = query.message
    if message is None:
        await query.answer()
        return
    t = user_texts(query.from_user.language_code, await deps.store.lang(query.from_user.id))
    pending = await deps.store.peek_pending(message.chat.id, message.message_id)
    if pending is not None and pending.user_id != query.from_user.id:
        await query.answer(t._("Only the person who sent this song can do that."))
        return
    pending = await deps.store.take_pending(message.chat.id, message.message_id)
    await query.answer()
    if pending is None:  # expired, or a second tap
        chat_id, message_id = message.chat.id, message.message_id
        if not await deps.store.request_of(chat_id, message_id):
            expired = t._("This request has expired. Please send the song again.")
            await deps.messenger.edit_now(chat_id, message_id, expired)
        return
    await start_job(deps, pending, mode, message.message_id, fetched_shown=False)


async def start_job(
    deps: BotDeps, pending: Pending, mode: Mode, message_id: int, *, fetched_shown: bool
) -> None:
    """Fetch the file from Telegram (links: nothing to fetch), submit it, start following it.

    Whatever goes wrong, the status message ends with the reason.
    """
    prefs = await deps.store.prefs(pending.user_id)
    lang, chat_id = pending.lang, pending.chat_id
    reply = TelegramReply(
        chat_id=chat_id,
        message_id=message_id,
        user_id=pending.user_id,
        lang=lang,
        title=pending.title,
        files=prefs.files,
    )
    requester = requester_of(deps, pending.user_id, chat_id)
    try:
        options = build_options(
            deps.settings,
            model=SIX_STEM_MODEL if mode == "6" else prefs.model or deps.four_stem_default,
            stems="vocals" if mode == "2" else "all",
            fmt=prefs.format,
        )
        async with deps.core.admission(requester) as ticket:
            if not fetched_shown:
                first = _waiting(pending) if pending.url else _fetching(pending)
                await deps.messenger.edit_now(chat_id, message_id, first)
            accepted = await deps.core.submit(ticket, _song(deps, pending), options, reply)
    except (StembotError, TooBigForTelegram) as exc:
        reason = rejection_text(texts(lang), exc)
    except Exception as exc:
        reason = rejection_text(texts(lang), internal_error(exc))
    else:
        await follow(deps, Status(request_id=accepted.request_id, **dict(reply)), accepted)
        return
    await deps.messenger.edit_now(chat_id, message_id, head(pending.title) + reason)


def requester_of(deps: BotDeps, user_id: int, chat_id: int) -> Requester:
    """Who asks, as the core counts them: a group's admin overrides apply in a group."""
    return Requester(
        "telegram",
        f"telegram:{user_id}",
        scope=f"telegram:chat:{chat_id}" if chat_id < 0 else None,
        admin=user_id in deps.tg.telegram_admin_ids,
    )


def internal_error(exc: Exception) -> InternalError:
    """What the user is told of an unexpected failure; logged with its reference."""
    error = InternalError()
    if isinstance(exc, TelegramError):
        log.warning("telegram: cannot fetch a file (%s), reference %s", exc, error.reference)
    else:
        log.exception("telegram: submitting failed, reference %s", error.reference)
    return error


def _song(deps: BotDeps, pending: Pending) -> Song:
    if pending.url is not None:
        return Link(pending.url)
    assert pending.file_id is not None
    return Upload(telegram_chunks(deps, pending.file_id), pending.filename or "file")


async def follow(deps: BotDeps, status: Status, accepted: Accepted) -> None:
    """Hand the request to delivery with its first state: queued, or a result from the cache."""
    if accepted.first.state != JobState.DONE:
        await deps.store.link(status.user_id, status.chat_id, status.message_id, status.request_id)
    await deps.delivery.follow(status, accepted.first)


async def telegram_chunks(deps: BotDeps, file_id: str) -> AsyncIterator[bytes]:
    """The file's bytes: read in place from a local Bot API server, else downloaded."""
    bot: Bot = deps.messenger.bot
    try:
        tg_file = await bot.get_file(file_id)
    except BadRequest as exc:
        if FILE_TOO_BIG.search(exc.message):
            raise TooBigForTelegram(None, deps.tg.download_limit_bytes() or 0) from None
        raise
    path = tg_file.file_path or ""
    if path and not path.startswith(("http://", "https://")):
        async for chunk in file_chunks(Path(path)):
            yield chunk
        return
    data = await tg_file.download_as_bytearray()
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        yield bytes(view[start : start + CHUNK])


def _fetching(pending: Pending) -> str:
    return fetching_text(texts(pending.lang), pending.title)


def _waiting(pending: Pending) -> str:
    event = ProgressEvent(job_id="", request_ids=[], state=JobState.QUEUED)
    return progress_text(texts(pending.lang), pending.title, event)


async def reply_html(to: Message, body: str, markup: InlineKeyboardMarkup | None = None) -> Message:
    """Answer a message, waiting out Telegram's flood control (a few times at most)."""
    for _ in range(3):
        try:
            return await to.reply_text(
                body, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=True
            )
        except RetryAfter as exc:
            await asyncio.sleep(seconds_of(exc.retry_after))
    return await to.reply_text(body, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=True)
