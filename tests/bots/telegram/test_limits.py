"""The per-user limits as a Telegram user meets them: the exact reason, nothing kept."""

from __future__ import annotations

import re
from pathlib import Path

from bots.telegram.store import Store
from shared import limits, metrics
from shared.gate import Gate
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import (
    FakeBotApi,
    Shown,
    audio,
    group_chat,
    is_final,
    private_chat,
)
from tests.bots.telegram.users import ANA, ROOT
from tests.support.audio import make_audio
from tests.support.service import Service

ACTIVE = "🎵 Song\n❌ You already have a song in progress; wait for it to finish or cancel it."


async def send_song(
    api: FakeBotApi, chat: dict[str, object], sender: dict[str, object], song: Path
) -> Shown:
    """A song in a private chat; in a group, a song and /stem in reply to it."""
    sent = api.send(chat, sender, audio=audio(api, song))
    if chat["type"] != "private":
        sent = api.send(chat, sender, "/stem", reply_to=sent)
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    await api.wait_for(lambda: is_final(status) or "❌" in (status.text or ""), what="the end")
    return status


async def test_one_song_at_a_time_then_free_again(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    await Store(service.redis).set_pref(ANA["id"], "mode", "4")
    song = make_audio(tmp_path / "Song.wav", seconds=1.0)
    # Ana has a song in progress (sent a moment ago, still running)
    gate = Gate(service.redis, service.settings, "telegram")
    held = await gate.admit("telegram:1001")

    refused = await send_song(api, private_chat(ANA), ANA, song)
    assert refused.text == ACTIVE
    assert service.uploads() == [] and service.tmp_leftovers() == []
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert await service.redis.zcard(limits.window_key("telegram:1001")) == 1  # not counted

    await limits.release(service.redis, "telegram:1001", held.id)
    done = await send_song(api, private_chat(ANA), ANA, song)
    assert (done.text or "").startswith("✅ Done: Song")
    # the finished song gave its slot back: the next one goes through too
    assert await service.redis.zcard(limits.active_key("telegram:1001")) == 0
    again = await send_song(
        api, private_chat(ANA), ANA, make_audio(tmp_path / "B.wav", seconds=1.5)
    )
    assert (again.text or "").startswith("✅ Done: B")
    text = await metrics.render(service.redis, service.settings)
    assert 'stembot_rate_limit_hits_total{frontend="telegram",limit="active"} 1' in text


async def test_hourly_limit_set_by_an_admin_applies_at_once(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    await Store(service.redis).set_pref(ANA["id"], "mode", "4")
    await limits.set_limit(service.redis, None, "jobs_per_hour", "1", "telegram:1")
    song = make_audio(tmp_path / "Song.wav", seconds=1.0)
    first = await send_song(api, private_chat(ANA), ANA, song)
    assert (first.text or "").startswith("✅ Done: Song")
    second = await send_song(api, private_chat(ANA), ANA, song)
    assert second.text == "🎵 Song\n❌ You can start 1 song an hour. Try again in 1 h."


async def test_group_override_and_exempt_admins(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start(telegram_admin_ids=[ROOT["id"]])
    store = Store(service.redis)
    for who in (ANA, ROOT):
        await store.set_pref(who["id"], "mode", "4")
    group = group_chat(-100555)
    await limits.set_limit(service.redis, None, "jobs_per_hour", "1", "telegram:1")
    await limits.set_limit(service.redis, "telegram:chat:-100555", "jobs_per_hour", "2", "t:9")
    song = make_audio(tmp_path / "Song.wav", seconds=1.0)

    # two songs an hour in this group, one elsewhere
    for _ in range(2):
        ok = await send_song(api, group, ANA, song)
        assert (ok.text or "").startswith("✅ Done: Song"), ok.text
    third = await send_song(api, group, ANA, song)
    assert third.text == "🎵 Song\n❌ You can start 2 songs an hour. Try again in 1 h."
    in_private = await send_song(api, private_chat(ANA), ANA, song)
    assert in_private.text == "🎵 Song\n❌ You can start 1 song an hour. Try again in 1 h."

    # a bot admin is not held to the hourly limit (STEMBOT_ADMINS_EXEMPT, on by default)
    for _ in range(3):
        ok = await send_song(api, private_chat(ROOT), ROOT, song)
        assert (ok.text or "").startswith("✅ Done: Song"), ok.text


async def test_banned_and_out_of_minutes(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    service.settings.limits.daily_minutes = 1
    await bot.start()
    await Store(service.redis).set_pref(ANA["id"], "mode", "4")
    song = make_audio(tmp_path / "Song.wav", seconds=3.0)
    # 58 s of today's minute already used by earlier songs
    await limits.charge_minutes(service.redis, "telegram:1001", "earlier", 58 / 60)

    refused = await send_song(api, private_chat(ANA), ANA, song)
    assert re.fullmatch(
        r"🎵 Song\n❌ This song is 3 s long, but only 2 s of your 1 minute of audio for today "
        r"are left\. Send a shorter song, or try again in \d+ (s|min|h( \d+ min)?)\.",
        refused.text or "",
    ), refused.text
    assert service.uploads() == [] and service.tmp_leftovers() == []
    # refused after reading: the request gave back everything it took
    assert await service.redis.zcard(limits.window_key("telegram:1001")) == 0
    assert await service.redis.zcard(limits.active_key("telegram:1001")) == 0

    await limits.ban(service.redis, "telegram:1001", "telegram:1", "spam")
    fetched = len(api.of("getFile"))
    banned = await send_song(api, private_chat(ANA), ANA, song)
    assert banned.text == "🎵 Song\n❌ You are banned from using this bot."
    assert len(api.of("getFile")) == fetched  # refused before fetching the file
