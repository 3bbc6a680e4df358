"""Command sync: sent to Discord when the commands changed or when asked, not on every start."""

from __future__ import annotations

from typing import Any, cast

import discord
from discord import app_commands

from bots.discord.app import commands_key
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import APP_ID, GUILD_ID, FakeDiscord
from tests.support.service import Service

GLOBAL = f"/applications/{APP_ID}/commands"
IN_GUILD = f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"
NAMES = ["stem", "stemadmin", "forget", "Split stems"]


def syncs(api: FakeDiscord) -> list[tuple[str, list[str]]]:
    """Each bulk overwrite of the commands: where, and the command names sent."""
    puts = [c for c in api.calls if c.method == "PUT"]
    return [(c.path, [cmd["name"] for cmd in cast(list[dict[str, Any]], c.json)]) for c in puts]


async def extra(interaction: discord.Interaction) -> None:
    """A command added in a later version of the bot."""


async def test_commands_are_synced_once_then_only_when_they_change(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    first = await bot.start()
    assert syncs(api) == [(GLOBAL, NAMES)]
    stored = await service.redis.get(commands_key(APP_ID, None))
    assert stored is not None and len(stored) == 64  # a sha256 of the payload
    await first.close()

    again = await bot.start()  # a restart: same commands
    assert len(syncs(api)) == 1
    assert await again.sync_commands() is False

    again.tree.add_command(app_commands.Command(name="extra", description="x", callback=extra))
    assert await again.sync_commands() is True  # changed: sent
    assert len(syncs(api)) == 2
    assert "extra" in syncs(api)[1][1]
    assert await again.sync_commands() is False

    assert await again.sync_commands(force=True) is True  # `stembot discord --sync-commands`
    assert [path for path, _ in syncs(api)] == [GLOBAL, GLOBAL, GLOBAL]


async def test_a_server_sync_is_tracked_apart_from_the_global_one(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    await bot.start(discord_sync_guild_id=GUILD_ID)
    await bot.start(discord_sync_guild_id=GUILD_ID)
    await bot.start()
    assert [path for path, _ in syncs(api)] == [GLOBAL, IN_GUILD]
    keys: Any = sorted(await service.redis.keys("stembot:discord:commands:*"))
    assert keys == sorted(
        k.encode() for k in (commands_key(APP_ID, None), commands_key(APP_ID, GUILD_ID))
    )
