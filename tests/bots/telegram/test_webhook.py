"""Webhook mode: Telegram is told where to post, and only posts with the secret count."""

from __future__ import annotations

import aiohttp

from shared.i18n import texts
from shared.redis_server import free_port
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import FakeBotApi, private_chat
from tests.bots.telegram.langs import START
from tests.bots.telegram.users import LENA
from tests.support.service import Service

SECRET = "s3cret_Token-1"


async def test_webhook_takes_updates_with_the_secret_only(
    bot: BotRunner, api: FakeBotApi, service: Service
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    await bot.start(
        telegram_webhook_url=url,
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
        telegram_webhook_secret=SECRET,
    )
    [hook] = api.of("setWebhook")
    assert hook.params["url"] == url
    assert hook.params["secret_token"] == SECRET
    assert hook.params["allowed_updates"] == ["message", "callback_query"]
    assert api.of("getUpdates") == []

    start = api.message(private_chat(LENA), LENA, "/start")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=api.update_json(message=start), headers=headers) as r:
                assert r.status == 403
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with http.post(url, json=api.update_json(message=start), headers=headers) as r:
            assert r.status == 200
    answer = await api.wait_for(lambda: api.reply_to(start), what="the answer")
    assert answer.text == texts("de")._(START)  # in the sender's language (German)
    assert len(api.of("sendMessage")) == 1  # the refused posts were not processed
    await bot.stop()
    assert api.of("deleteWebhook") == []  # updates wait at Telegram while the bot is down
