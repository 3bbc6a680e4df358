"""The per-user limits on Discord: refused privately at once, per-server overrides, admins."""

from __future__ import annotations

from pathlib import Path

import discord

from shared import limits
from shared.gate import Gate
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import GUILD_ID, USER_ID, FakeDiscord
from tests.bots.discord.test_rejections import private_answer
from tests.bots.discord.test_stem import description, is_over, wav
from tests.support.service import Service

ME = f"discord:{USER_ID}"
MANAGE_GUILD = discord.Permissions(manage_guild=True).value


async def stem(
    api: FakeDiscord,
    bot: BotRunner,
    tmp_path: Path,
    *,
    guild: bool = True,
    member_permissions: int = 0,
) -> str:
    """Send /stem with a file; the end of its status message, or the private refusal."""
    file = api.attachment("Song.wav", wav(tmp_path, 1.0), "audio/wav")
    command = api.stem_command(file=file)
    payload = bot.feed(
        api.interaction(2, command, guild=guild, member_permissions=member_permissions)
    )
    token = payload["token"]

    def outcome(a: FakeDiscord) -> bool:
        refused = any(
            c.json["type"] == 4
            for c in a.calls_to("POST", f"/interactions/{payload['id']}/{token}/callback")
        )
        return refused or is_over(a.original(token))

    await api.wait_for(outcome)
    original = api.original(token)
    if original is not None and is_over(original):
        return description(original).split("\n")[0]
    return await private_answer(api, payload)


async def test_refused_privately_before_anything_is_fetched(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    held = await Gate(service.redis, service.settings, "discord").admit(ME)
    text = await stem(api, bot, tmp_path)
    assert text == ("❌ You already have a song in progress; wait for it to finish or cancel it.")
    assert api.cdn_fetches == []  # nothing downloaded
    assert service.uploads() == []
    await limits.release(service.redis, ME, held.id)
    assert await stem(api, bot, tmp_path) == "✅ Done! Download your stems:"
    assert len(api.cdn_fetches) == 1
    assert await service.redis.zcard(limits.active_key(ME)) == 0


async def test_server_override_admins_and_bans(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    await limits.set_limit(service.redis, None, "jobs_per_hour", "3", "discord:1")
    scope = f"discord:guild:{GUILD_ID}"
    await limits.set_limit(service.redis, scope, "jobs_per_hour", "1", "discord:2")
    assert await stem(api, bot, tmp_path) == "✅ Done! Download your stems:"
    assert await stem(api, bot, tmp_path) == ("❌ You can start 1 song an hour. Try again in 1 h.")
    # in a DM the global limit applies
    assert await stem(api, bot, tmp_path, guild=False) == "✅ Done! Download your stems:"
    # a member who may manage the server is exempt there
    assert (
        await stem(api, bot, tmp_path, member_permissions=MANAGE_GUILD)
        == "✅ Done! Download your stems:"
    )
    await limits.ban(service.redis, ME, "discord:2", scope=scope)
    assert await stem(api, bot, tmp_path, member_permissions=MANAGE_GUILD) == (
        "❌ You are banned from using this bot."
    )
    assert await stem(api, bot, tmp_path, guild=False) == "✅ Done! Download your stems:"
