"""The commands besides songs: /start, /help, /settings, /status, /cancel, and their list."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, BotCommand, CallbackQuery, Message, Update, User
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bots.telegram.deps import BotDeps
from bots.telegram.render import settings_markup, settings_text
from bots.telegram.texts import TEXTS, error_text, lang_of, text
from shared import jobs
from shared.errors import InternalError, ServiceUnavailable, StembotError
from shared.schemas import JobRequest, TelegramReply

log = logging.getLogger(__name__)

#: Commands in the order Telegram shows them; each has a ``cmd_<name>`` text.
COMMANDS = ("start", "help", "settings", "status", "cancel", "stem", "forget")


async def register_commands(bot: Bot) -> None:
    """Tell Telegram our command list, in English by default and in every other language."""
    for lang in TEXTS:
        commands = [BotCommand(name, text(lang, f"cmd_{name}")) for name in COMMANDS]
        try:
            await bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
        except TelegramError as exc:  # the bot works without the menu
            log.warning("telegram: cannot register the command list (%s)", exc)


async def send_start(message: Message, user: User) -> None:
    await message.reply_text(text(lang_of(user.language_code), "start"))


async def send_help(deps: BotDeps, message: Message, user: User) -> None:
    lang = lang_of(user.language_code)
    limits = deps.settings.limits
    limit = deps.tg.download_limit_bytes()
    note = text(lang, "cloud_note", cloud_mb=limit // (1024 * 1024)) if limit else ""
    body = text(
        lang,
        "help",
        max_minutes=f"{limits.max_duration_s / 60:g}",
        max_mb=f"{limits.max_upload_mb:g}",
        cloud_note=note,
    )
    await message.reply_text(body)


async def show_settings(deps: BotDeps, message: Message, user: User) -> None:
    lang = lang_of(user.language_code)
    prefs = await deps.store.prefs(user.id)
    default = deps.four_stem_default
    await message.reply_text(
        settings_text(lang, prefs, default), reply_markup=settings_markup(lang, prefs, default)
    )


async def change_setting(deps: BotDeps, query: CallbackQuery, data: str) -> None:
    """A settings button ("set:<name>:<value>"): store it, redraw the settings message."""
    user = query.from_user
    lang = lang_of(user.language_code)
    _, name, value = [*data.split(":", 2), "", ""][:3]
    if not await deps.store.set_pref(user.id, name, value):
        await query.answer()
        return
    await query.answer(text(lang, "saved"))
    prefs = await deps.store.prefs(user.id)
    default = deps.four_stem_default
    if query.message is not None:
        try:
            await query.edit_message_text(
                settings_text(lang, prefs, default),
                reply_markup=settings_markup(lang, prefs, default),
            )
        except TelegramError as exc:
            log.info("telegram: cannot redraw the settings (%s)", exc)


async def _active(deps: BotDeps, user_id: int) -> list[JobRequest]:
    """The user's requests still waiting for their job; the others are forgotten."""
    ids = await deps.store.active(user_id)
    live, gone = [], set(ids)
    for request in await jobs.load_requests(deps.redis, ids):
        waiting = deps.redis.sismember(jobs.subscribers_key(request.key), request.request_id)
        if await waiting:  # type: ignore[misc]
            live.append(request)
            gone.discard(request.request_id)
    await deps.store.forget(user_id, *gone)
    return live


async def send_status(deps: BotDeps, message: Message, user: User) -> None:
    lang = lang_of(user.language_code)
    requests = await _active(deps, user.id)
    if not requests:
        await message.reply_text(text(lang, "no_jobs"))
        return
    lines = [text(lang, "your_jobs")]
    for request in requests:
        fields = ["state", "percent"]
        raw = await deps.redis.hmget(jobs.job_key(request.key), fields)  # type: ignore[misc]
        state = raw[0].decode() if raw[0] else "queued"
        title = request.reply.title if isinstance(request.reply, TelegramReply) else None
        line = f"• {escape(title or request.source.title)}: "
        line += text(lang, f"state_{state}")
        if raw[1] and state in ("downloading", "separating"):
            line += f" {float(raw[1]):.0f}%"
        lines.append(line)
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def cancel_all(deps: BotDeps, message: Message, user: User) -> None:
    lang = lang_of(user.language_code)
    count = 0
    for request in await _active(deps, user.id):
        if await jobs.cancel_request(deps.redis, request, storage=deps.storage):
            count += 1
    key = "cancelled_n" if count else "nothing_to_cancel"
    await message.reply_text(text(lang, key, count=count))


async def cancel_button(deps: BotDeps, query: CallbackQuery) -> None:
    """The Cancel button of a status message: withdraw that request (its owner only)."""
    message = query.message
    lang = lang_of(query.from_user.language_code)
    rid = await deps.store.request_of(message.chat.id, message.message_id) if message else None
    requests = await jobs.load_requests(deps.redis, [rid]) if rid else []
    if not requests:
        await query.answer(text(lang, "already_over"))
    elif requests[0].user_id != f"telegram:{query.from_user.id}":
        await query.answer(text(lang, "not_yours"))
    elif await jobs.cancel_request(deps.redis, requests[0], storage=deps.storage):
        await query.answer(text(lang, "cancelling"))
    else:
        await query.answer(text(lang, "already_over"))


async def apologize(update: object, error: BaseException | None) -> None:
    """What a handler raised: logged, and told to the user in their language."""
    if not isinstance(update, Update):
        log.error("telegram: failed outside an update", exc_info=error)
        return
    lang = lang_of(update.effective_user.language_code if update.effective_user else None)
    if isinstance(error, jobs.REDIS_DOWN):  # Redis restarting: "busy, try again in a minute"
        log.warning("telegram: Redis unreachable (%s)", error)
        error = ServiceUnavailable()
    if isinstance(error, StembotError):
        reason = error_text(lang, error.code, error.user_message)
    else:
        internal = InternalError()
        log.error(
            "telegram: update %s failed, reference %s",
            update.update_id,
            internal.reference,
            exc_info=error,
        )
        reason = error_text(lang, internal.code, internal.user_message)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(reason[:200], show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text("❌ " + reason)
    except TelegramError as exc:
        log.info("telegram: cannot tell the user about a failure (%s)", exc)
