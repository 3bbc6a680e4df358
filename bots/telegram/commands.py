"""The commands besides songs: /start, /help, /settings, /status, /cancel, and their menu."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, BotCommand, CallbackQuery, Message, Update, User
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bots.telegram.deps import BotDeps
from bots.telegram.render import settings_markup, settings_text
from bots.telegram.texts import COMMANDS, state_label, telegram_code, texts_of, user_texts
from shared import jobs
from shared.errors import InternalError, ServiceUnavailable, StembotError
from shared.i18n import LANGUAGES, Texts, texts
from shared.schemas import JobRequest, TelegramReply

log = logging.getLogger(__name__)


async def register_commands(bot: Bot) -> None:
    """Tell Telegram our command menu: English by default, and in each of our languages."""
    for lang in LANGUAGES:
        t = texts(lang)
        commands = [BotCommand(name, t._(about)) for name, about in COMMANDS.items()]
        try:
            await bot.set_my_commands(commands, language_code=telegram_code(lang))
        except TelegramError as exc:  # the bot works without the menu
            log.warning("telegram: cannot register the %s command list (%s)", lang, exc)


async def send_start(deps: BotDeps, message: Message, user: User) -> None:
    t = await texts_of(deps.store, user)
    await message.reply_text(
        t._(
            "Hi! Send me a song and I'll split it into stems (vocals, drums, bass, other) with "
            "Demucs: an audio file, a voice message, a video, or a YouTube link.\n\n"
            "In a group, reply to a song with /stem, or send /stem followed by a link.\n"
            "/settings: your default model, mode, format and language. /help: more."
        )
    )


async def send_help(deps: BotDeps, message: Message, user: User) -> None:
    t = await texts_of(deps.store, user)
    limits = deps.settings.limits
    limit = deps.tg.download_limit_bytes()
    note = ""
    if limit:
        cloud_mb = t.number(limit // (1024 * 1024))
        note = " " + t._(
            "Telegram only lets bots fetch files up to {cloud_mb} MB: for bigger ones, send a "
            "YouTube link.",
            cloud_mb=cloud_mb,
        )
    # TRANSLATORS: {cloud_note} is empty, or a sentence (after a space) on Telegram's own
    # download limit
    body = t._(
        "Send me an audio file, a voice message, a video or a YouTube link. I answer with one "
        "message that shows the progress and, at the end, a download link for every stem and "
        "a zip of all of them.\n\n"
        "Limits: songs up to {max_minutes} min, files up to {max_mb} MB.{cloud_note}\n\n"
        "/settings: model, mode, format and language\n/status: your songs in progress\n"
        "/cancel: stop them\n/stem: split a song in a group (reply to it, or add a link)",
        max_minutes=t.number(limits.max_duration_s / 60, 1),
        max_mb=t.number(limits.max_upload_mb, 1),
        cloud_note=note,
    )
    await message.reply_text(body)


async def show_settings(deps: BotDeps, message: Message, user: User) -> None:
    t = await texts_of(deps.store, user)
    prefs = await deps.store.prefs(user.id)
    default = deps.four_stem_default
    await message.reply_text(
        settings_text(t, prefs, default), reply_markup=settings_markup(t, prefs, default)
    )


async def change_setting(deps: BotDeps, query: CallbackQuery, data: str) -> None:
    """A settings button ("set:<name>:<value>"): store it, redraw the settings message (in the
    language just chosen, if that was the setting)."""
    user = query.from_user
    _, name, value = [*data.split(":", 2), "", ""][:3]
    if not await deps.store.set_pref(user.id, name, value):
        await query.answer()
        return
    prefs = await deps.store.prefs(user.id)
    t = user_texts(user.language_code, prefs.lang)
    await query.answer(t._("Saved."))
    default = deps.four_stem_default
    if query.message is not None:
        try:
            await query.edit_message_text(
                settings_text(t, prefs, default), reply_markup=settings_markup(t, prefs, default)
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
    t = await texts_of(deps.store, user)
    requests = await _active(deps, user.id)
    if not requests:
        await message.reply_text(t._("You have no songs in progress."))
        return
    lines = [t._("Your songs in progress:")]
    for request in requests:
        fields = ["state", "percent"]
        raw = await deps.redis.hmget(jobs.job_key(request.key), fields)  # type: ignore[misc]
        state = raw[0].decode() if raw[0] else "queued"
        title = request.reply.title if isinstance(request.reply, TelegramReply) else None
        line = f"• {escape(title or request.source.title)}: "
        line += escape(state_label(t, state))
        if raw[1] and state in ("downloading", "separating"):
            line += f" {t.number(round(float(raw[1])))}%"
        lines.append(line)
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


async def cancel_all(deps: BotDeps, message: Message, user: User) -> None:
    t = await texts_of(deps.store, user)
    count = 0
    for request in await _active(deps, user.id):
        if await jobs.cancel_request(deps.redis, request, storage=deps.storage):
            count += 1
    if count:
        # TRANSLATORS: how many songs /cancel stopped
        answer = t.n_("Cancelled: {n}.", "Cancelled: {n}.", count)
    else:
        answer = t._("Nothing to cancel.")
    await message.reply_text(answer)


async def cancel_button(deps: BotDeps, query: CallbackQuery) -> None:
    """The Cancel button of a status message: withdraw that request (its owner only)."""
    message = query.message
    t = await texts_of(deps.store, query.from_user)
    rid = await deps.store.request_of(message.chat.id, message.message_id) if message else None
    requests = await jobs.load_requests(deps.redis, [rid]) if rid else []
    if not requests:
        await query.answer(t._("This job is already over."))
    elif requests[0].user_id != f"telegram:{query.from_user.id}":
        await query.answer(t._("Only the person who sent this song can do that."))
    elif await jobs.cancel_request(deps.redis, requests[0], storage=deps.storage):
        await query.answer(t._("Cancelling…"))
    else:
        await query.answer(t._("This job is already over."))


async def apologize(deps: BotDeps, update: object, error: BaseException | None) -> None:
    """What a handler raised: logged, and told to the user in their language."""
    if not isinstance(update, Update):
        log.error("telegram: failed outside an update", exc_info=error)
        return
    t = await _texts_while_failing(deps, update.effective_user)
    if isinstance(error, jobs.REDIS_DOWN):  # Redis restarting: "busy, try again in a minute"
        log.warning("telegram: Redis unreachable (%s)", error)
        error = ServiceUnavailable()
    if isinstance(error, StembotError):
        reason = error.message(t)
    else:
        internal = InternalError()
        log.error(
            "telegram: update %s failed, reference %s",
            update.update_id,
            internal.reference,
            exc_info=error,
        )
        reason = internal.message(t)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(reason[:200], show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text("❌ " + reason)
    except TelegramError as exc:
        log.info("telegram: cannot tell the user about a failure (%s)", exc)


async def _texts_while_failing(deps: BotDeps, user: User | None) -> Texts:
    """The user's texts; their app's language when their choice cannot be read (Redis down)."""
    if user is None:
        return texts(None)
    try:
        return await texts_of(deps.store, user)
    except jobs.REDIS_DOWN:
        return user_texts(user.language_code)
