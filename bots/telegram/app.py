"""The Telegram bot process: a python-telegram-bot Application over the shared core.

:func:`build_application` wires the handlers and the progress delivery to the dependencies
the entry point made (settings, Redis, storage); :func:`run_telegram` runs it, by long polling
or, with ``STEMBOT_TELEGRAM_WEBHOOK_URL``, as a webhook, until it is cancelled. More processes
of one bot share its send budget and its progress delivery (bots.delivery); Telegram hands a
bot's updates to one poller, so the others run with ``STEMBOT_TELEGRAM_RECEIVE_UPDATES=false``
(or all take webhook calls behind one URL, with one STEMBOT_TELEGRAM_WEBHOOK_SECRET).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from arq.connections import ArqRedis
from telegram import Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import Application, ApplicationBuilder

from bots.delivery import Delivery
from bots.telegram.admin import add_admin_handlers, register_admin_commands
from bots.telegram.commands import register_commands
from bots.telegram.delivery import Status, telegram_delivery
from bots.telegram.deps import KEY, BotDeps
from bots.telegram.handlers import add_handlers
from bots.telegram.messenger import BudgetLimiter, Messenger, telegram_budget
from bots.telegram.settings import TelegramSettings
from bots.telegram.store import Store
from shared.config import Settings
from shared.storage import Storage

log = logging.getLogger(__name__)

TelegramApp = Application[Any, Any, Any, Any, Any, Any]
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
POLL_TIMEOUT_S = 10
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramStartupError(Exception):
    """A readable one-line reason the bot cannot start."""


def _token(tg: TelegramSettings) -> str:
    token = tg.telegram_token.get_secret_value().strip() if tg.telegram_token else ""
    if not token:
        raise TelegramStartupError("STEMBOT_TELEGRAM_TOKEN is not set")
    return token


def build_application(
    settings: Settings, tg: TelegramSettings, redis: ArqRedis, storage: Storage
) -> TelegramApp:
    """The Application with its handlers; its progress delivery is in ``bot_data``."""
    # Opt in to python-telegram-bot's timedelta time periods (its next major version's only
    # behaviour); otherwise every RetryAfter it raises also emits a deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    token = _token(tg)
    budget = telegram_budget(redis, tg, token)  # every send of every process of the bot
    builder = (
        ApplicationBuilder()
        .token(token)
        .concurrent_updates(True)
        .rate_limiter(BudgetLimiter(budget))
    )
    if tg.telegram_api_url:
        builder = (
            builder.base_url(f"{tg.telegram_api_url}/bot")
            .base_file_url(f"{tg.telegram_api_url}/file/bot")
            .local_mode(tg.local_server)
        )
    app = builder.build()
    store = Store(redis)
    messenger = Messenger(app.bot, tg, settings, storage, budget)
    delivery = telegram_delivery(redis, store, messenger, tg)
    app.bot_data[KEY] = BotDeps(settings, tg, redis, storage, store, messenger, delivery)
    add_handlers(app)
    add_admin_handlers(app)
    return app


async def run_telegram(
    settings: Settings, redis: ArqRedis, storage: Storage, tg: TelegramSettings | None = None
) -> None:
    """Run the bot until cancelled, then stop cleanly (pending progress resumes on restart).

    Raises TelegramStartupError when the token is missing or rejected, or Telegram is
    unreachable at start-up.
    """
    tg = tg or TelegramSettings()
    token = _token(tg)
    with _token_kept_out_of_logs(token):  # before the Bot exists: it logs its URLs
        app = build_application(settings, tg, redis, storage)
        delivery = BotDeps.of_app(app).delivery
        try:
            await app.initialize()
        except BaseException as exc:
            await app.bot.shutdown()  # its HTTP clients are open even when get_me failed
            if isinstance(exc, InvalidToken):  # whose own text holds the token
                raise TelegramStartupError("Telegram rejected STEMBOT_TELEGRAM_TOKEN") from None
            if isinstance(exc, NetworkError):
                reason = str(exc).replace(token, "<token>")
                raise TelegramStartupError(f"cannot reach the Telegram Bot API: {reason}") from None
            raise
        runner: web.AppRunner | None = None
        try:
            await register_commands(app.bot)
            await register_admin_commands(app.bot, tg)
            await delivery.start()
            await app.start()
            if tg.telegram_webhook_url and tg.telegram_receive_updates:
                secret = (
                    tg.telegram_webhook_secret.get_secret_value()
                    if tg.telegram_webhook_secret
                    else secrets.token_urlsafe(32)
                )
                runner = await _listen(app, tg, secret)
                await app.bot.set_webhook(
                    tg.telegram_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
                )
            elif tg.telegram_receive_updates:
                assert app.updater is not None
                await app.updater.start_polling(
                    timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES
                )
            how = "webhook" if runner else "long polling"
            how = how if tg.telegram_receive_updates else "delivery only"
            log.info("telegram: @%s is running (%s)", app.bot.username, how)
            await asyncio.Event().wait()
        finally:
            await _stop(app, delivery, runner)


async def _stop(app: TelegramApp, delivery: Delivery[Status], runner: web.AppRunner | None) -> None:
    """Stop taking updates, let running handlers finish, then stop delivery and the bot."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if runner is not None:
        await runner.cleanup()
    if app.running:
        await app.stop()
    await delivery.stop()
    await app.shutdown()
    log.info("telegram: stopped")


async def _listen(app: TelegramApp, tg: TelegramSettings, secret: str) -> web.AppRunner:
    """Take Telegram's webhook calls (only with the secret) at the path of the webhook URL."""
    assert tg.telegram_webhook_url is not None

    async def receive(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return web.Response(status=403)
        try:
            update = Update.de_json(await request.json(), app.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        await app.update_queue.put(update)
        return web.Response()

    server = web.Application()
    server.router.add_post(urlsplit(tg.telegram_webhook_url).path or "/", receive)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, tg.telegram_webhook_listen, tg.telegram_webhook_port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class _RedactToken(logging.Filter):
    """Replace the bot token in any record (it is part of every Bot API and file URL)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        return True


@contextmanager
def _token_kept_out_of_logs(token: str) -> Iterator[None]:
    """httpx logs every request URL at INFO: quiet it, and redact the token everywhere."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    redact = _RedactToken(token)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redact)
