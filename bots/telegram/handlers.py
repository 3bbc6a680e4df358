"""Telegram handlers: each turns one kind of update into one call of intake/commands."""

from __future__ import annotations

from typing import Any, cast

from telegram import Message, Update, User
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.telegram import commands, intake, mixes
from bots.telegram.deps import BotDeps
from bots.telegram.render import MIX_DATA
from bots.telegram.store import Mode

Context = ContextTypes.DEFAULT_TYPE


def _who(update: Update) -> tuple[Message, User] | None:
    message, user = update.effective_message, update.effective_user
    return (message, user) if message is not None and user is not None else None


async def on_start(update: Update, context: Context) -> None:
    """/start: say what the bot does."""
    if who := _who(update):
        await commands.send_start(BotDeps.of(context), *who)


async def on_help(update: Update, context: Context) -> None:
    """/help: how to use the bot, and its limits."""
    if who := _who(update):
        await commands.send_help(BotDeps.of(context), *who)


async def on_settings(update: Update, context: Context) -> None:
    """/settings: the user's defaults, with buttons to change them."""
    if who := _who(update):
        await commands.show_settings(BotDeps.of(context), *who)


async def on_status(update: Update, context: Context) -> None:
    """/status: the user's songs in progress."""
    if who := _who(update):
        await commands.send_status(BotDeps.of(context), *who)


async def on_cancel(update: Update, context: Context) -> None:
    """/cancel: withdraw all of the user's songs in progress."""
    if who := _who(update):
        await commands.cancel_all(BotDeps.of(context), *who)


async def on_stem(update: Update, context: Context) -> None:
    """/stem as a reply to a song, or /stem <link>."""
    if who := _who(update):
        message, user = who
        extra = " ".join(context.args or []) or None
        await intake.accept(BotDeps.of(context), message, message.reply_to_message, extra, user)


async def on_song(update: Update, context: Context) -> None:
    """A file, voice message, video or link sent in a private chat."""
    if who := _who(update):
        message, user = who
        await intake.accept(BotDeps.of(context), message, message, None, user)


async def on_mode(update: Update, context: Context) -> None:
    """A mode button under a song."""
    if query := update.callback_query:
        mode = cast(Mode, (query.data or "").removeprefix("mode:"))
        await intake.choose_mode(BotDeps.of(context), query, mode)


async def on_cancel_button(update: Update, context: Context) -> None:
    """The Cancel button of a status message."""
    if query := update.callback_query:
        await commands.cancel_button(BotDeps.of(context), query)


async def on_setting(update: Update, context: Context) -> None:
    """A button of the /settings message."""
    if query := update.callback_query:
        await commands.change_setting(BotDeps.of(context), query, query.data or "")


async def on_mix(update: Update, context: Context) -> None:
    """A mix button under a done song, or of its custom mix chooser."""
    query = update.callback_query
    found = MIX_DATA.fullmatch(query.data or "") if query else None
    if query is None or found is None:
        return
    deps = BotDeps.of(context)
    if found["back"]:
        await mixes.choose(deps, query, found["back"], None)
    elif found["action"] == "mixc":
        await mixes.choose(deps, query, found["key"], int(found["mask"]))
    else:
        await mixes.make(deps, query, found["key"], int(found["mask"]))


async def on_error(update: object, context: Context) -> None:
    """Anything a handler raised: logged and told to the user; the bot keeps running."""
    await commands.apologize(BotDeps.of(context), update, context.error)


def add_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    songs = (
        filters.AUDIO
        | filters.VOICE
        | filters.VIDEO
        | filters.VIDEO_NOTE
        | filters.Document.ALL
        | (filters.TEXT & ~filters.COMMAND)
    )
    app.add_handlers(
        [
            CommandHandler("start", on_start),
            CommandHandler("help", on_help),
            CommandHandler("settings", on_settings),
            CommandHandler("status", on_status),
            CommandHandler("cancel", on_cancel),
            CommandHandler("stem", on_stem),
            MessageHandler(filters.ChatType.PRIVATE & songs, on_song),
            CallbackQueryHandler(on_mode, pattern=r"^mode:[426]$"),
            CallbackQueryHandler(on_cancel_button, pattern=r"^cancel$"),
            CallbackQueryHandler(on_setting, pattern=r"^set:"),
            CallbackQueryHandler(on_mix, pattern=MIX_DATA),
        ]
    )
    app.add_error_handler(on_error)
