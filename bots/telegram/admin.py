"""The admin commands and /forget on Telegram: thin handlers over shared.admin and shared.forget.

Who is an admin: the bot's admins (STEMBOT_TELEGRAM_ADMIN_IDS) everywhere, and in a group its
creator and administrators (asked from Telegram with getChatMember at each use) for that
group. In a private chat the commands act on the global limits, bans and stats. The admin
commands are not in the public command menu; the bot's admins get them in theirs.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bots.telegram.commands import COMMANDS
from bots.telegram.deps import BotDeps
from bots.telegram.settings import TelegramSettings
from bots.telegram.texts import admin_text, text
from shared import admin, limits
from shared.admin import Actor, NotAllowed
from shared.errors import StembotError
from shared.forget import forget

log = logging.getLogger(__name__)


def _escape(value: str) -> str:
    """For Telegram's HTML: <, > and & only (quotes stay readable)."""
    return html.escape(value, quote=False)


Context = ContextTypes.DEFAULT_TYPE
Run = Callable[[BotDeps, Actor, Message, list[str]], Awaitable[str]]
ADMIN_COMMANDS = ("limits", "setlimit", "resetlimit", "ban", "unban", "queue", "stats", "audit")
_ADMINS = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)


async def actor_of(deps: BotDeps, bot: Bot, message: Message, user: User) -> Actor:
    """The sender's rights here: a bot admin, or an admin of this group (asked from Telegram)."""
    bot_admin = user.id in deps.tg.telegram_admin_ids
    if message.chat.type == "private":
        return Actor(f"telegram:{user.id}", None, bot_admin=bot_admin)
    scope_admin = False
    if not bot_admin:
        member = await bot.get_chat_member(message.chat.id, user.id)
        scope_admin = member.status in _ADMINS
    scope = f"telegram:chat:{message.chat.id}"
    return Actor(f"telegram:{user.id}", scope, scope_admin=scope_admin, bot_admin=bot_admin)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _where(scope: str | None, global_word: str = "globally") -> str:
    return admin_text("in_group" if scope else global_word)


def _keys() -> str:
    return ", ".join(limits.KEYS)


async def _limits(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/limits"""
    view = await admin.show_limits(deps.redis, deps.settings, actor)
    table = _escape(admin.limits_table(view, "this group"))
    return admin_text("limits", where=_where(view.scope), table=table)


async def _setlimit(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/setlimit KEY VALUE"""
    admin.target(actor)  # a stranger hears "admins only", not how to use it
    if len(args) != 2:
        return admin_text("setlimit_usage", keys=_keys())
    changed = await admin.set_limit(deps.redis, deps.settings, actor, args[0], args[1])
    return admin_text(
        "set",
        key=changed.key,
        value=changed.new.shown,
        where=_where(changed.scope),
        old=changed.old.shown,
    )


async def _resetlimit(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/resetlimit KEY"""
    admin.target(actor)
    if len(args) != 1:
        return admin_text("resetlimit_usage", keys=_keys())
    changed = await admin.reset_limit(deps.redis, deps.settings, actor, args[0])
    source = admin_text(f"source_{changed.new.source}")
    where = _where(changed.scope)
    return admin_text("reset", key=changed.key, value=changed.new.shown, where=where, source=source)


def _target_user(message: Message, args: list[str]) -> tuple[int, list[str]] | None:
    """(user id, the rest of the words) from a reply or a numeric first word."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return replied.from_user.id, args
    if args and args[0].isdigit():
        return int(args[0]), args[1:]
    return None


async def _ban(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/ban USER_ID [reason], or as a reply"""
    admin.target(actor)
    found = _target_user(message, args)
    if found is None:
        return admin_text("ban_usage")
    user_id, reason = found
    scope = await admin.ban(deps.redis, actor, f"telegram:{user_id}", " ".join(reason))
    return admin_text("banned", user=user_id, where=_where(scope, "everywhere"))


async def _unban(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/unban USER_ID, or as a reply"""
    admin.target(actor)
    found = _target_user(message, args)
    if found is None:
        return admin_text("unban_usage")
    user_id, _ = found
    scope, was = await admin.unban(deps.redis, actor, f"telegram:{user_id}")
    key = "unbanned" if was else "not_banned"
    return admin_text(key, user=user_id, where=_where(scope, "everywhere"))


async def _queue(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/queue"""
    entries = await admin.queue(deps.redis, deps.settings, actor)
    if not entries:
        return admin_text("queue_empty")
    hidden = admin_text("hidden")
    lines = "\n".join(_escape(admin.queue_line(e, hidden)) for e in entries)
    return admin_text("queue", count=len(entries), lines=lines)


async def _stats(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/stats [days]"""
    admin.target(actor)
    days = admin.parse_days(args[0] if args else None)
    scope, found = await admin.day_stats(deps.redis, actor, days)
    table = _escape(admin.stats_table(found))
    period = admin_text("last_days", days=days) if days > 1 else admin_text("today")
    return admin_text("stats", period=period, where=_where(scope), table=table)


async def _audit(deps: BotDeps, actor: Actor, message: Message, args: list[str]) -> str:
    """/audit"""
    scope, entries = await admin.audit(deps.redis, actor)
    where = _where(scope, "everywhere")
    if not entries:
        return admin_text("audit_empty", where=where)
    lines = "\n".join(_escape(admin.audit_line(e, with_scope=scope is None)) for e in entries)
    return admin_text("audit", where=where, lines=lines)


def _command(run: Run) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A handler that works out the sender's rights, runs the command, answers in the chat."""

    async def handle(update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        deps = BotDeps.of(context)
        try:
            actor = await actor_of(deps, context.bot, message, user)
            reply = await run(deps, actor, message, list(context.args or []))
        except NotAllowed:
            private = message.chat.type == "private"
            reply = admin_text("not_admin_private" if private else "not_admin_group")
        except StembotError as exc:  # a value out of range, an unknown key...
            reply = admin_text("invalid", reason=_escape(exc.user_message))
        await message.reply_text(reply, parse_mode=ParseMode.HTML)

    handle.__doc__ = run.__doc__
    return handle


# --- /forget -------------------------------------------------------------------------------


async def on_forget(update: Update, context: Context) -> None:
    """/forget: ask for confirmation (the buttons work for the sender only)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    buttons = [
        InlineKeyboardButton(admin_text("forget_yes"), callback_data=f"forget:{user.id}:yes"),
        InlineKeyboardButton(admin_text("forget_no"), callback_data=f"forget:{user.id}:no"),
    ]
    markup = InlineKeyboardMarkup([buttons])
    await message.reply_text(admin_text("forget_confirm"), reply_markup=markup)


async def on_forget_button(update: Update, context: Context) -> None:
    """A button under the /forget question."""
    if query := update.callback_query:
        await forget_button(BotDeps.of(context), query)


async def forget_button(deps: BotDeps, query: CallbackQuery) -> None:
    _, owner, choice = (query.data or "::").split(":", 2)
    user_id = query.from_user.id
    if owner != str(user_id):
        await query.answer(admin_text("forget_not_yours"))
        return
    await query.answer()
    if choice != "yes":
        reply = admin_text("forget_kept")
    else:
        try:
            done = await forget(deps.redis, deps.storage, f"telegram:{user_id}")
        except NotAllowed:
            reply = admin_text("forget_in_progress")
        else:
            await deps.store.erase_user(user_id, done.request_ids)
            reply = admin_text(
                "forget_done",
                requests=_count(len(done.requests), "request"),
                deleted=_count(done.deleted_jobs, "song"),
                kept=_count(done.kept_jobs, "song"),
            )
    try:
        await query.edit_message_text(reply, reply_markup=None)
    except TelegramError as exc:
        log.info("telegram: cannot answer /forget (%s)", exc)


# --- wiring ----------------------------------------------------------------------------------


async def register_admin_commands(bot: Bot, tg: TelegramSettings) -> None:
    """The bot's admins get the admin commands in their own command menu (everyone else not)."""
    menu = [BotCommand(name, text("en", f"cmd_{name}")) for name in COMMANDS]
    menu += [BotCommand(name, admin_text(f"cmd_{name}")) for name in (*ADMIN_COMMANDS, "forget")]
    for admin_id in tg.telegram_admin_ids:
        try:
            await bot.set_my_commands(menu, scope=BotCommandScopeChat(admin_id))
        except TelegramError as exc:  # e.g. an admin who never opened a chat with the bot
            log.warning("telegram: no admin menu for %s (%s)", admin_id, exc)


def add_admin_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    runs: dict[str, Run] = {
        "limits": _limits,
        "setlimit": _setlimit,
        "resetlimit": _resetlimit,
        "ban": _ban,
        "unban": _unban,
        "queue": _queue,
        "stats": _stats,
        "audit": _audit,
    }
    handlers: list[Any] = [CommandHandler(name, _command(run)) for name, run in runs.items()]
    handlers += [
        CommandHandler("forget", on_forget),
        CallbackQueryHandler(on_forget_button, pattern=r"^forget:\d+:(yes|no)$"),
    ]
    app.add_handlers(handlers)
