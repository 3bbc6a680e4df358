"""More than one Discord bot process: shards by setting, and any process delivers."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest
from pydantic import ValidationError

from bots.discord.app import StemBot
from bots.discord.presenter import STREAM
from bots.discord.settings import DiscordSettings
from tests.bots.discord.conftest import BotRunner, discord_settings
from tests.bots.discord.fake_discord import CHANNEL_ID, FakeDiscord
from tests.bots.discord.test_stem import description, is_over, wav
from tests.support.service import Service
from tests.support.streams import settled


async def test_shard_settings_reach_the_client(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service
    mine = StemBot(
        svc.settings,
        discord_settings(discord_shard_count=8, discord_shard_ids="4-7"),
        svc.redis,
        svc.storage,
    )
    assert isinstance(mine, discord.AutoShardedClient)
    assert (mine.shard_count, mine.shard_ids) == (8, [4, 5, 6, 7])
    every = StemBot(svc.settings, discord_settings(), svc.redis, svc.storage)
    assert (every.shard_count, every.shard_ids) == (None, None)  # Discord's count, all here

    monkeypatch.setenv("STEMBOT_DISCORD_SHARD_COUNT", "16")
    monkeypatch.setenv("STEMBOT_DISCORD_SHARD_IDS", "0,2,8-10")
    ds = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert (ds.discord_shard_count, ds.discord_shard_ids) == (16, [0, 2, 8, 9, 10])
    monkeypatch.setenv("STEMBOT_DISCORD_SHARD_IDS", "[3, 4]")
    assert DiscordSettings(_env_file=None).discord_shard_ids == [3, 4]  # type: ignore[call-arg]
    monkeypatch.setenv("STEMBOT_DISCORD_SHARD_IDS", "12-16")
    with pytest.raises(ValidationError, match="each from 0 to 15"):
        DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("STEMBOT_DISCORD_SHARD_COUNT")
    monkeypatch.setenv("STEMBOT_DISCORD_SHARD_IDS", "0-1")
    with pytest.raises(ValidationError, match="needs STEMBOT_DISCORD_SHARD_COUNT"):
        DiscordSettings(_env_file=None)  # type: ignore[call-arg]


async def test_another_process_delivers_through_the_channel_once_the_first_stops(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    first = await bot.start(bot_instance="dc-a", bot_claim_after_s=0.6)
    await bot.start(bot_instance="dc-b", bot_claim_after_s=0.6)
    file = api.attachment("Shared.wav", wav(tmp_path, seconds=4.0), "audio/wav")
    payload = api.interaction(2, api.stem_command(file=file))  # to the first process
    first._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
    token = payload["token"]
    await api.wait_for(lambda a: description(a.original(token)).startswith("⏳"), what="queued")
    original = api.original(token)
    assert original is not None
    message_id = int(original["id"])
    await first.close()  # it stops: the second shows the rest, through the channel

    await api.wait_for(lambda a: is_over(a.messages[message_id]), what="the end")
    await settled(service.redis, STREAM)
    channel = api.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{message_id}")
    by_token = api.calls_to("PATCH", f"/webhooks/{first.application_id}/{token}")
    ends = [c for c in channel + by_token if description(c.json).startswith("✅")]
    assert len(ends) == 1 and ends[0] in channel
    assert description(api.messages[message_id]).startswith("✅ Done! Download your stems:")
