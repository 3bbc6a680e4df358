"""Fixtures: the real service (Redis, worker, web server), the fake Bot API, the bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bots.telegram.app import run_telegram
from bots.telegram.settings import TelegramSettings
from shared.config import Settings
from tests.bots.telegram.fake_bot_api import TOKEN, FakeBotApi
from tests.support.service import Service

EDIT_INTERVAL_S = 0.3
#: Telegram allows 20 messages a minute in a group; the bot keeps to it (shared.sendbudget,
#: tests/shared/test_sendbudget.py), and a group's song flow is tested at that pace
#: (test_songs.py). The other group tests (admins, limits) would spend most of their time
#: waiting for it: they run at this faster pace.
GROUP_SENDS_PER_MIN = 600


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.stop()


def tg_settings(api: FakeBotApi, **overrides: Any) -> TelegramSettings:
    values: dict[str, Any] = {
        "telegram_token": TOKEN,
        "telegram_api_url": api.url,
        "telegram_local_mode": False,  # behave like the cloud Bot API (20 MB downloads)
        "telegram_webhook_url": None,
        "telegram_webhook_secret": None,
        "telegram_send_audio": True,
        "telegram_edit_interval_s": EDIT_INTERVAL_S,
        "telegram_group_sends_per_min": GROUP_SENDS_PER_MIN,
    }
    return TelegramSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@dataclass
class BotRunner:
    """Runs ``run_telegram`` (the real entry point) as a task, as many times as a test likes."""

    api: FakeBotApi
    service: Service
    runs: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, settings: Settings | None = None, **overrides: Any) -> TelegramSettings:
        tg = tg_settings(self.api, **overrides)
        svc = self.service
        settings = settings or svc.settings
        task = asyncio.create_task(run_telegram(settings, svc.redis, svc.storage, tg))
        self.runs.append(task)
        ready = "setWebhook" if tg.telegram_webhook_url else "getUpdates"
        seen = len(self.api.of(ready))
        await self.api.wait_for(
            lambda: task.done() or len(self.api.of(ready)) > seen, what="the bot to start"
        )
        if task.done():
            task.result()  # raise what stopped it
        return tg

    async def stop(self) -> None:
        """Stop the running bot as SIGTERM would (cancel run_telegram); it must exit cleanly."""
        task = self.runs[-1]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def bot(api: FakeBotApi, service: Service) -> AsyncIterator[BotRunner]:
    runner = BotRunner(api, service)
    yield runner
    for task in runner.runs:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
