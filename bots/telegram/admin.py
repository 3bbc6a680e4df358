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

from bots.telegram.deps import BotDeps
from bots.telegram.settings import TelegramSettings
from bots.telegram.texts import ADMIN_COMMANDS, COMMANDS, telegram_code, texts_of
from shared import admin, limits
from shared.admin import Actor, NotAllowed
from shared.errors import StembotError
from shared.forget import forget
from shared.i18n import LANGUAGES, Texts, texts

log = logging.getLogger(__name__)


def _escape(value: str) -> str:
    """For Telegram's HTML: <, > and & only (quotes stay readable)."""
    return html.escape(value, quote=False)


Context = ContextTypes.DEFAULT_TYPE
Run = Callable[[BotDeps, Actor, Texts, Message, list[str]], Awaitable[str]]
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


def _keys() -> str:
    return ", ".join(limits.KEYS)


def _shown(t: Texts, row: admin.LimitRow) -> str:
    """A limit's value: a number, or "no limit"."""
    unlimited = row.value == 0 and limits.KEYS[row.key].zero_unlimited
    return t.p_("limit value", "no limit") if unlimited else str(row.value)


async def _limits(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/limits"""
    view = await admin.show_limits(deps.redis, deps.settings, actor)
    # TRANSLATORS: in the /limits table: where a value comes from
    table = _escape(admin.limits_table(view, t.p_("limit source", "this group"), t))
    head = t._("Limits in this group:") if view.scope else t._("Limits globally:")
    foot = t._("Change one: /setlimit KEY VALUE\nBack to the default: /resetlimit KEY")
    return f"{head}\n<pre>{table}</pre>\n{foot}"


async def _setlimit(
    deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]
) -> str:
    """/setlimit KEY VALUE"""
    admin.target(actor)  # a stranger hears "admins only", not how to use it
    if len(args) != 2:
        return t._(
            "Usage: /setlimit KEY VALUE, e.g. /setlimit jobs_per_hour 10\nKeys: {keys}",
            keys=_keys(),
        )
    changed = await admin.set_limit(deps.redis, deps.settings, actor, args[0], args[1])
    values = {"key": changed.key, "value": _shown(t, changed.new), "old": _shown(t, changed.old)}
    if changed.scope:
        return t._(
            "✅ {key} is now {value} in this group (was {old}). It applies to new requests at "
            "once.",
            **values,
        )
    return t._(
        "✅ {key} is now {value} globally (was {old}). It applies to new requests at once.",
        **values,
    )


async def _resetlimit(
    deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]
) -> str:
    """/resetlimit KEY"""
    admin.target(actor)
    if len(args) != 1:
        return t._("Usage: /resetlimit KEY\nKeys: {keys}", keys=_keys())
    changed = await admin.reset_limit(deps.redis, deps.settings, actor, args[0])
    if changed.new.source == "global":
        source = t.p_("limit source", "the global value")
    else:
        source = t.p_("limit source", "the default")
    values = {"key": changed.key, "value": _shown(t, changed.new), "source": source}
    if changed.scope:
        # TRANSLATORS: {source} is "the default" or "the global value"
        return t._("✅ {key} is back to {value} in this group ({source}).", **values)
    return t._("✅ {key} is back to {value} globally ({source}).", **values)


def _target_user(message: Message, args: list[str]) -> tuple[int, list[str]] | None:
    """(user id, the rest of the words) from a reply or a numeric first word."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return replied.from_user.id, args
    if args and args[0].isdigit():
        return int(args[0]), args[1:]
    return None


async def _ban(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/ban USER_ID [reason], or as a reply"""
    admin.target(actor)
    found = _target_user(message, args)
    if found is None:
        return t._("Usage: /ban USER_ID [reason], or reply to their message with /ban [reason]")
    user_id, reason = found
    scope = await admin.ban(deps.redis, actor, f"telegram:{user_id}", " ".join(reason))
    if scope:
        return t._("🚫 User {user} is banned in this group.", user=user_id)
    return t._("🚫 User {user} is banned everywhere.", user=user_id)


async def _unban(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/unban USER_ID, or as a reply"""
    admin.target(actor)
    found = _target_user(message, args)
    if found is None:
        return t._("Usage: /unban USER_ID, or reply to their message with /unban")
    user_id, _ = found
    scope, was = await admin.unban(deps.redis, actor, f"telegram:{user_id}")
    if was and scope:
        return t._("✅ User {user} is no longer banned in this group.", user=user_id)
    if was:
        return t._("✅ User {user} is no longer banned everywhere.", user=user_id)
    if scope:
        return t._("User {user} was not banned in this group.", user=user_id)
    return t._("User {user} was not banned everywhere.", user=user_id)


async def _queue(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/queue"""
    entries = await admin.queue(deps.redis, deps.settings, actor)
    if not entries:
        return t._("Nothing is waiting or in progress.")
    # TRANSLATORS: in /queue, instead of the title of a song from another chat
    hidden = t._("(another chat)")
    lines = "\n".join(_escape(admin.queue_line(e, hidden, t)) for e in entries)
    head = t.n_(
        "Songs waiting or in progress: {n}", "Songs waiting or in progress: {n}", len(entries)
    )
    return f"{head}\n<pre>{lines}</pre>"


async def _stats(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/stats [days]"""
    admin.target(actor)
    days = admin.parse_days(args[0] if args else None)
    scope, found = await admin.day_stats(deps.redis, actor, days)
    table = _escape(admin.stats_table(found, t))
    if days == 1 and scope:
        head = t._("Stats for today in this group (UTC):")
    elif days == 1:
        head = t._("Stats for today globally (UTC):")
    elif scope:
        head = t.n_(
            "Stats for the last {n} day in this group (UTC):",
            "Stats for the last {n} days in this group (UTC):",
            days,
        )
    else:
        head = t.n_(
            "Stats for the last {n} day globally (UTC):",
            "Stats for the last {n} days globally (UTC):",
            days,
        )
    return f"{head}\n<pre>{table}</pre>"


async def _audit(deps: BotDeps, actor: Actor, t: Texts, message: Message, args: list[str]) -> str:
    """/audit"""
    scope, entries = await admin.audit(deps.redis, actor)
    if not entries:
        if scope:
            return t._("No changes in this group yet.")
        return t._("No changes everywhere yet.")
    lines = "\n".join(_escape(admin.audit_line(e, with_scope=scope is None)) for e in entries)
    head = t._("Latest changes in this group:") if scope else t._("Latest changes everywhere:")
    return f"{head}\n<pre>{lines}</pre>"


def _command(run: Run) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A handler that works out the sender's rights, runs the command, answers in the chat."""

    async def handle(update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        deps = BotDeps.of(context)
        t = await texts_of(deps.store, user)
        try:
            actor = await actor_of(deps, context.bot, message, user)
            reply = await run(deps, actor, t, message, list(context.args or []))
        except NotAllowed:
            if message.chat.type == "private":
                reply = t._("❌ Only the bot's admins can use this command.")
            else:
                reply = t._(
                    "❌ Only this group's admins and the bot's admins can use this command."
                )
        except StembotError as exc:  # a value out of range, an unknown key...
            reply = "❌ " + _escape(exc.message(t))
        await message.reply_text(reply, parse_mode=ParseMode.HTML)

    handle.__doc__ = run.__doc__
    return handle


# --- /forget -------------------------------------------------------------------------------


async def on_forget(update: Update, context: Context) -> None:
    """/forget: ask for confirmation (the buttons work for the sender only)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    t = await texts_of(BotDeps.of(context).store, user)
    yes, no = t.p_("button", "Delete my data"), t.p_("button", "Keep it")
    buttons = [
        InlineKeyboardButton(yes, callback_data=f"forget:{user.id}:yes"),
        InlineKeyboardButton(no, callback_data=f"forget:{user.id}:no"),
    ]
    question = t._(
        "This deletes what I keep about you: your settings, your history and the stems of the "
        "songs only you asked for. Songs someone else asked for too are kept until they "
        "expire. Bans and the admins' change log are kept."
    )
    await message.reply_text(question, reply_markup=InlineKeyboardMarkup([buttons]))


async def on_forget_button(update: Update, context: Context) -> None:
    """A button under the /forget question."""
    if query := update.callback_query:
        await forget_button(BotDeps.of(context), query)


async def forget_button(deps: BotDeps, query: CallbackQuery) -> None:
    _, owner, choice = (query.data or "::").split(":", 2)
    user_id = query.from_user.id
    t = await texts_of(deps.store, query.from_user)  # before /forget deletes the choice
    if owner != str(user_id):
        await query.answer(t._("Only the person who sent /forget can do that."))
        return
    await query.answer()
    if choice != "yes":
        reply = t._("Nothing was deleted.")
    else:
        try:
            done = await forget(deps.redis, deps.storage, f"telegram:{user_id}")
        except NotAllowed:
            reply = t._(
                "❌ You have songs in progress: /cancel them or wait until they are done, then "
                "send /forget again."
            )
        else:
            await deps.store.erase_user(user_id, done.request_ids)
            reply = _forgotten(t, len(done.requests), done.deleted_jobs, done.kept_jobs)
    try:
        await query.edit_message_text(reply, reply_markup=None)
    except TelegramError as exc:
        log.info("telegram: cannot answer /forget (%s)", exc)


def _forgotten(t: Texts, requests: int, deleted: int, kept: int) -> str:
    # TRANSLATORS: {requests} is "2 requests"; {deleted} and {kept} are "1 song", "3 songs"
    return t._(
        "🗑 Done: I deleted your settings, your history ({requests}) and the stems of {deleted} "
        "only you asked for. Kept: {kept} someone else asked for too (until they expire).",
        requests=t.n_("{n} request", "{n} requests", requests),
        deleted=t.n_("{n} song", "{n} songs", deleted),
        kept=t.n_("{n} song", "{n} songs", kept),
    )


# --- wiring ----------------------------------------------------------------------------------


async def register_admin_commands(bot: Bot, tg: TelegramSettings) -> None:
    """The bot's admins get the admin commands in their own command menu (everyone else not),
    in English by default and in each of our languages."""
    public = [name for name in COMMANDS if name != "forget"]
    for admin_id in tg.telegram_admin_ids:
        for lang in LANGUAGES:
            t = texts(lang)
            menu = [BotCommand(name, t._(COMMANDS[name])) for name in public]
            menu += [BotCommand(name, t._(about)) for name, about in ADMIN_COMMANDS.items()]
            menu.append(BotCommand("forget", t._(COMMANDS["forget"])))
            try:
                scope = BotCommandScopeChat(admin_id)
                await bot.set_my_commands(menu, scope=scope, language_code=telegram_code(lang))
            except TelegramError as exc:  # e.g. an admin who never opened a chat with the bot
                log.warning("telegram: no admin menu for %s (%s)", admin_id, exc)
                break


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
