"""The Split stems menu, options, Cancel, the 15-minute token switch-over and a bot restart."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import discord

from bots.discord.presenter import STREAM
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import CHANNEL_ID, OTHER_ID, FakeDiscord
from tests.bots.discord.test_rejections import private_answer
from tests.bots.discord.test_stem import buttons, description, is_over, link_buttons, wav
from tests.support.service import Service
from tests.support.streams import settled

VIDEO = "https://youtu.be/dQw4w9WgXcQ"
QUEUED = "⏳ Queued: you are next · about 1 min"


def channel_edits(api: FakeDiscord, message_id: int) -> list[dict[str, Any]]:
    return [c.json for c in api.calls_to("PATCH", f"/channels/{CHANNEL_ID}/messages/{message_id}")]


async def test_split_stems_menu_in_a_dm_with_files_over_the_limit(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    api.bad_url = lambda url: "/r/" in url  # Discord does not take the page's URL in a button
    message = api.user_message(
        "here it is", [api.attachment("Dance.wav", wav(tmp_path), "audio/x-wav")]
    )
    payload = bot.feed(api.interaction(2, api.split_menu(message), guild=False, size_limit=1000))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert status["embeds"][0]["title"] == "🎵 Dance"
    assert description(status).startswith("✅ Done! Download your stems:")
    assert "files" not in status  # the stems are larger than this upload limit: links only
    # the player button was refused: the end came without it
    assert status["components"] == []
    tried = [c.json for c in api.calls_to("PATCH", "/webhooks/") if c.json.get("components")]
    [(label, page)] = link_buttons(tried[-1])
    assert label == "Open player" and api.bad_url(page)


async def test_rate_limited_edits_are_retried_after_the_wait_discord_asks_for(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    api.rate_limits = 3
    file = api.attachment("Slow.wav", wav(tmp_path), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert description(status).startswith("✅ Done!")
    assert len(api.limited) == 3
    assert api.calls_to("PATCH", "/webhooks/")[0].json["embeds"][0]["description"] == (
        "📥 Fetching your file…"
    )


async def test_two_stems_flac_option(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    file = api.attachment("Tune.wav", wav(tmp_path), "audio/wav")
    command = api.stem_command(file=file, stems="vocals", format="flac", model="htdemucs")
    payload = bot.feed(api.interaction(2, command))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert status["embeds"][0]["footer"]["text"] == "htdemucs · vocals + instrumental · flac"
    assert sorted(status["files"]) == ["Tune - instrumental.flac", "Tune - vocals.flac"]
    [(label, page)] = link_buttons(status)  # the player, with the files
    assert label == "Open player" and page.startswith(service.base_url + "/r/")


async def queued_youtube(bot: BotRunner, api: FakeDiscord, service: Service) -> dict[str, Any]:
    """A YouTube request that waits: no download worker takes its queue (and no network)."""
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"
    await bot.start(settings)
    payload = bot.feed(api.interaction(2, api.stem_command(url=VIDEO)))
    token = payload["token"]
    await api.wait_for(lambda a: description(a.original(token)) == QUEUED)
    return payload


def press(api: FakeDiscord, status: dict[str, Any], **who: Any) -> dict[str, Any]:
    [custom_id] = buttons(status)
    return api.interaction(3, api.button(custom_id), message=status, **who)


async def test_cancel_only_by_the_requester_or_an_admin(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    payload = await queued_youtube(bot, api, service)
    status = api.original(payload["token"])
    assert status is not None
    assert status["embeds"][0]["title"] == "🎵 dQw4w9WgXcQ"
    assert buttons(status)[0].startswith("stembot:cancel:")

    stranger = bot.feed(press(api, status, user_id=OTHER_ID))
    assert await private_answer(api, stranger) == (
        "❌ Only the person who started this job (or a server admin) can cancel it."
    )
    admin = discord.Permissions(manage_guild=True).value
    bot.feed(press(api, status, user_id=OTHER_ID, member_permissions=admin))
    token = payload["token"]
    final = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert description(final) == "🚫 Cancelled. Nothing was kept."
    assert buttons(final) == []


async def test_after_fifteen_minutes_the_message_is_edited_through_the_channel(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    payload = await queued_youtube(bot, api, service)
    token = payload["token"]
    status = api.original(token)
    assert status is not None
    message_id = int(status["id"])
    assert channel_edits(api, message_id) == []
    api.expired_tokens.add(token)  # Discord no longer accepts the interaction token
    bot.feed(press(api, status))  # the requester cancels: a new edit is due
    await api.wait_for(lambda a: is_over(a.messages[message_id]))
    [final] = channel_edits(api, message_id)
    assert final["embeds"][0]["description"] == "🚫 Cancelled. Nothing was kept."
    assert final["components"] == []


async def test_a_restarted_bot_finishes_the_message_once(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    payload = await queued_youtube(bot, api, service)
    status = api.original(payload["token"])
    assert status is not None
    message_id = int(status["id"])
    await bot.stop()

    # a new process: no interaction token, only the channel; the old button still works
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"
    await bot.start(settings)
    press_payload = bot.feed(press(api, status))
    await api.wait_for(lambda a: is_over(a.messages[message_id]))
    assert len([e for e in channel_edits(api, message_id) if "🚫" in str(e)]) == 1
    callbacks = api.calls_to("POST", f"/interactions/{press_payload['id']}/")
    assert [c.json["type"] for c in callbacks] == [6]  # acknowledged, the message shows it
    await settled(service.redis, STREAM)
    await bot.stop()

    # every event delivered again, as if none had been acknowledged: nothing is sent twice
    await service.redis.xgroup_setid(STREAM, "discord", "0")
    before = len(api.calls)
    await bot.start(settings)
    await api.wait_for(lambda a: len(a.calls) >= before + 2)  # login and sync
    await settled(service.redis, STREAM)  # read again and acknowledged
    assert channel_edits(api, message_id)[-1]["embeds"][0]["description"].startswith("🚫")
    assert len([e for e in channel_edits(api, message_id) if "🚫" in str(e)]) == 1
