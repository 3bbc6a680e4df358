"""Fixtures: the real service (Redis, worker, web server), the fake Discord, the bot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from bots.discord.app import StemBot
from bots.discord.settings import DiscordSettings
from shared.config import Settings
from tests.bots.discord.fake_discord import FakeDiscord
from tests.support.service import Service

TOKEN = "test-discord-token.not-a-secret"


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    url = await fake.start()
    # discord.py's REST base (the webhook and interaction routes use it too)
    monkeypatch.setattr(discord.http.Route, "BASE", f"{url}/api/v10")
    yield fake
    await fake.stop()


def discord_settings(**overrides: Any) -> DiscordSettings:
    values: dict[str, Any] = {
        "discord_token": TOKEN,
        "discord_sync_guild_id": None,
        "discord_owner_ids": [],
        "discord_attach_files": True,
        "discord_edit_interval_s": 0.2,
    }
    return DiscordSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@dataclass
class BotRunner:
    """A logged-in StemBot whose gateway events the tests feed in."""

    api: FakeDiscord
    service: Service
    bots: list[StemBot] = field(default_factory=list)

    async def start(self, settings: Settings | None = None, **overrides: Any) -> StemBot:
        ds = discord_settings(**overrides)
        svc = self.service
        bot = StemBot(settings or svc.settings, ds, svc.redis, svc.storage)
        self.bots.append(bot)
        await bot.login(TOKEN)
        await bot.sync_commands()
        return bot

    @property
    def bot(self) -> StemBot:
        return self.bots[-1]

    def feed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Deliver an INTERACTION_CREATE as the gateway would."""
        self.bot._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        return payload

    async def stop(self) -> None:
        await self.bot.close()


@pytest.fixture
async def bot(api: FakeDiscord, service: Service) -> AsyncIterator[BotRunner]:
    runner = BotRunner(api, service)
    yield runner
    for b in runner.bots:
        with contextlib.suppress(Exception):
            await b.close()
    await asyncio.sleep(0)
