"""Songs through the real bot, worker and web server: what the user sees in the chat."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import re
import time
from pathlib import Path

import aiohttp
import pytest

from bots.telegram.store import Store
from shared.i18n import ENGLISH
from shared.redis_server import PrivateRedis
from tests.bots.telegram.conftest import EDIT_INTERVAL_S, BotRunner
from tests.bots.telegram.fake_bot_api import (
    TOKEN,
    FakeBotApi,
    Shown,
    audio,
    group_chat,
    is_final,
    private_chat,
    voice,
)
from tests.bots.telegram.users import ANA, BOB
from tests.support.audio import make_audio
from tests.support.music import MINOR, Song, write_song
from tests.support.service import Service, running_service

CANCEL = {"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel"}]]}
LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')


async def ask(
    api: FakeBotApi, sender: dict[str, object], text: str, chat: dict | None = None
) -> Shown:
    """Send a command; return the bot's answer."""
    sent = api.send(chat or private_chat(sender), sender, text)
    return await api.wait_for(lambda: api.reply_to(sent), what=f"the answer to {text}")


async def test_song_mode_choice_progress_and_links(
    bot: BotRunner,
    api: FakeBotApi,
    service: Service,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await bot.start()
    song = write_song(tmp_path / "My Song.wav", Song("E", MINOR, 140, "pad", "rock"), seed=3)
    sent_at = time.time()
    sent = api.send(private_chat(ANA), ANA, audio=audio(api, song, "audio/wav"))

    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    assert status.text == "🎵 My Song\nHow should I split it?"
    assert status.buttons == ["4 stems", "Vocals + instrumental", "6 stems"]

    query = api.press(ANA, status, "Vocals + instrumental")
    await api.wait_for(lambda: is_final(status), what="the final message")
    done_at = time.time()
    assert api.toasts(query) == [""]

    texts = status.texts
    assert texts[1] == "🎵 My Song\n📥 Getting the file from Telegram…"
    progress = re.compile(
        r"🎵 My Song\n(⏳ In the queue: .*|🔎 Reading the audio…|💾 Encoding the stems…"
        r"|🎛 Separating [█░]{12} \d+%( · about \d+ s left)?)"
    )
    for shown in texts[2:-1]:
        assert progress.fullmatch(shown), shown
    assert any("🎛 Separating" in shown for shown in texts), texts
    for _, version_text, markup in status.versions[2:-1]:
        assert markup == CANCEL, version_text  # a Cancel button while queued or running
    last = texts[-1]
    lines = last.splitlines()
    assert lines[:4] == [
        "✅ Done: My Song",
        "htdemucs · Vocals + instrumental · MP3",
        "🎼 E minor · 140 BPM",  # the song's key and tempo, as the worker found them
        "",
    ]
    ttl = service.settings.storage.link_ttl_s
    valid_until = {ENGLISH.moment(at + ttl) for at in range(int(sent_at), int(done_at) + 2)}
    assert lines[4].removeprefix("Download links, valid until ").removesuffix(":") in valid_until
    assert re.fullmatch(r"Download links, valid until \d+/\d+/\d\d, \d+:\d\d\W[AP]M UTC:", lines[4])
    page, *links = LINK.findall(last)
    assert page[1] == "▶ Listen, mix and download"
    assert page[0].startswith(service.base_url + "/r/")
    # the player opens from a button: a link button, as the page is not HTTPS
    player = {"text": "▶ Open player", "url": page[0].replace("&amp;", "&")}
    assert (status.markup or {})["inline_keyboard"][0] == [player]
    # then the backing tracks (the song without one stem) and a custom mix (tests/bots/telegram/
    # test_mixes.py)
    assert status.buttons[1:] == [
        "🎚 without vocals",
        "🎚 without drums",
        "🎚 without bass",
        "🎛 Custom mix…",
    ]
    assert [name for _, name in links] == ["vocals", "instrumental", "all stems (zip)"]
    async with aiohttp.ClientSession() as http:
        async with http.get(page[0].replace("&amp;", "&")) as resp:
            assert resp.status == 200
            assert "My Song" in await resp.text()
        for url, _ in links:
            url = url.replace("&amp;", "&")
            assert url.startswith(service.base_url + "/files/")
            async with http.get(url) as resp:
                assert resp.status == 200

    # edits of one message are at least the interval apart
    times = [at for at, _, _ in status.versions[1:]]
    assert all(b - a >= EDIT_INTERVAL_S * 0.95 for a, b in itertools.pairwise(times))

    # the stems also come as audio files, once each, in one album answering the status message
    await api.wait_for(lambda: api.of("sendMediaGroup"), what="the album")
    album = [s for s in api.messages(ANA["id"]) if s.audio]
    assert [(s.audio[0], s.audio[2]) for s in album if s.audio] == [
        ("My Song - vocals.mp3", "My Song (vocals)"),
        ("My Song - instrumental.mp3", "My Song (instrumental)"),
    ]
    assert {(s.reply_to, s.media_group_id) for s in album} == {
        (status.message_id, album[0].media_group_id)
    }
    assert album[0].media_group_id is not None
    assert len(api.of("sendMediaGroup")) == 1 and api.of("sendAudio") == []

    assert (await ask(api, ANA, "/status")).text == "You have no songs in progress."
    assert TOKEN not in caplog.text


async def test_saved_defaults_go_ahead_and_flood_control_is_honoured(
    bot: BotRunner, api: FakeBotApi, tmp_path: Path
) -> None:
    await bot.start()
    commands = api.of("setMyCommands")
    assert [c.params.get("language_code") for c in commands] == [None, "de", "es", "fr", "pt", "ru"]
    names = [c["command"] for c in commands[0].params["commands"]]
    assert names == ["start", "help", "settings", "status", "cancel", "stem", "forget"]

    panel = await ask(api, ANA, "/settings")
    assert panel.text is not None and "Mode: Ask each time" in panel.text
    api.press(ANA, panel, "4 stems")
    await api.wait_for(lambda: "Mode: 4 stems" in (panel.text or ""), what="mode saved")
    api.press(ANA, panel, "FLAC")
    await api.wait_for(lambda: "Format: FLAC" in (panel.text or ""), what="format saved")
    assert "✓ 4 stems" in panel.buttons and "✓ FLAC" in panel.buttons

    api.flood("editMessageText", retry_after=1)
    api.refuse("sendMediaGroup", 413, "Request Entity Too Large")
    api.bad_url = lambda url: "/r/" in url  # Telegram does not take the page's URL in a button
    song = make_audio(tmp_path / "memo.ogg", seconds=4.0, channels=1)
    sent = api.send(private_chat(ANA), ANA, voice=voice(api, song))
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    assert status.versions[0][1] == "🎵 Voice message\n📥 Getting the file from Telegram…"
    assert status.versions[0][2] is None  # no mode question: the saved defaults apply

    await api.wait_for(lambda: is_final(status), what="the final message")
    edits = [
        c for c in api.of("editMessageText") if c.params["message_id"] == str(status.message_id)
    ]
    assert edits[0].status == 429
    assert edits[1].at - edits[0].at >= 1.0  # waited as long as Telegram said
    assert sum(t.startswith("✅") for t in status.texts) == 1
    assert status.texts[-1].splitlines()[:2] == [
        "✅ Done: Voice message",
        "htdemucs · 4 stems · FLAC",
    ]
    # Telegram refused the player button: the end came without it
    assert status.markup is None
    refused = [e for e in edits if e.status == 400]
    assert [e.params["reply_markup"]["inline_keyboard"][0][0]["text"] for e in refused] == [
        "▶ Open player"
    ]
    # Telegram refused the album as too large as a whole: the stems came one by one
    await api.wait_for(lambda: len(api.of("sendAudio")) == 4, what="the stems one by one")
    assert [c.status for c in api.of("sendMediaGroup")] == [413]
    names = [s.audio[0] for s in api.messages(ANA["id"]) if s.audio]
    assert names == [f"Voice message - {s}.flac" for s in ("drums", "bass", "other", "vocals")]


async def test_group_stem_command_and_a_cached_result(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start(telegram_group_sends_per_min=20)  # Telegram's pace in a group
    group = group_chat()
    song = make_audio(tmp_path / "Riff.wav", seconds=3.0)
    posted = api.send(group, ANA, audio=audio(api, song, "audio/wav"))

    usage = await ask(api, ANA, "/stem", group)
    assert usage.text == (
        "Reply to a message with a song with /stem, or send /stem followed by a YouTube link."
    )
    command = api.send(group, ANA, "/stem@stems_test_bot", reply_to=posted)
    status = await api.wait_for(lambda: api.reply_to(command), what="the status message")
    assert status.buttons == ["4 stems", "Vocals + instrumental", "6 stems"]

    query = api.press(BOB, status, "4 stems")
    await api.wait_for(lambda: api.toasts(query), what="Bob's answer")
    assert api.toasts(query) == ["Only the person who sent this song can do that."]
    api.press(ANA, status, "4 stems")
    await api.wait_for(lambda: is_final(status), what="the final message")
    assert status.texts[-1].startswith("✅ Done: Riff\nhtdemucs · 4 stems · MP3")
    assert status.texts[1] == "🎵 Riff\n📥 Getting the file from Telegram…"
    # a group: Telegram has no Mini Apps there, the player is a link button
    [player] = (status.markup or {})["inline_keyboard"][0]
    assert player["text"] == "▶ Open player" and player["url"].startswith(service.base_url + "/r/")
    await api.wait_for(lambda: api.of("sendMediaGroup"), what="the album")
    album = [s.audio[0] for s in api.messages(group["id"]) if s.audio]
    assert album == [f"Riff - {s}.mp3" for s in ("drums", "bass", "other", "vocals")]

    # the same song again: answered from the cache, no second separation
    again = api.send(group, BOB, "/stem", reply_to=posted)
    second = await api.wait_for(lambda: api.reply_to(again), what="the second status")
    api.press(BOB, second, "4 stems")
    await api.wait_for(lambda: is_final(second), what="the cached result")
    assert second.texts[1:] == ["🎵 Riff\n📥 Getting the file from Telegram…", status.texts[-1]]
    await api.wait_for(lambda: len(api.of("sendMediaGroup")) == 2, what="the album, twice")
    assert api.of("sendAudio") == []
    # nothing answered the plain audio message in the group
    assert all(s.reply_to != posted["message_id"] for s in api.messages(group["id"]))


async def test_youtube_link_waits_in_the_queue_until_cancelled(
    bot: BotRunner, api: FakeBotApi, service: Service
) -> None:
    # no download worker takes this queue: the links wait there (and we need no network)
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"
    await bot.start(settings)
    store = Store(service.redis)
    await store.set_pref(ANA["id"], "mode", "4")

    sent = api.send(private_chat(ANA), ANA, "listen: https://youtu.be/dQw4w9WgXcQ!")
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    queued = "🎵 YouTube video dQw4w9WgXcQ\n⏳ In the queue: next up · about 1 min"
    await api.wait_for(lambda: status.text == queued, what="the queue position")
    assert status.markup == CANCEL

    query = api.press(BOB, status, "Cancel")
    await api.wait_for(lambda: api.toasts(query), what="Bob's answer")
    assert api.toasts(query) == ["Only the person who sent this song can do that."]
    query = api.press(ANA, status, "Cancel")
    await api.wait_for(lambda: is_final(status), what="cancelled")
    assert api.toasts(query) == ["Cancelling…"]
    assert status.text == "🎵 YouTube video dQw4w9WgXcQ\n🚫 Cancelled. Nothing was kept."
    assert (await ask(api, ANA, "/status")).text == "You have no songs in progress."

    # and with /status and /cancel
    sent = api.send(private_chat(ANA), ANA, "https://www.youtube.com/watch?v=aaaaaaaaaaa&t=3")
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    await api.wait_for(lambda: "In the queue" in (status.text or ""), what="queued")
    listing = await ask(api, ANA, "/status")
    assert listing.text == "Your songs in progress:\n• YouTube video aaaaaaaaaaa: queued"
    assert (await ask(api, ANA, "/cancel")).text == "Cancelled: 1."
    await api.wait_for(lambda: is_final(status), what="cancelled")
    assert status.text == "🎵 YouTube video aaaaaaaaaaa\n🚫 Cancelled. Nothing was kept."
    assert (await ask(api, ANA, "/cancel")).text == "Nothing to cancel."


async def test_an_https_page_opens_as_a_mini_app_in_a_private_chat(
    api: FakeBotApi, redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    public = "https://stems.example.org"
    async with running_service(redis_server.url, storage_dir, model_repo, public_url=public) as svc:
        await svc.redis.flushall()
        bot = BotRunner(api, svc)
        try:
            await bot.start()
            await Store(svc.redis).set_pref(ANA["id"], "mode", "4")
            song = make_audio(tmp_path / "Riff.wav", seconds=3.0)
            posted = api.send(private_chat(ANA), ANA, audio=audio(api, song, "audio/wav"))
            status = await api.wait_for(lambda: api.reply_to(posted), what="the status message")
            await api.wait_for(lambda: is_final(status), what="the final message")
            page, *_ = LINK.findall(status.texts[-1])
            assert page[0].startswith(public + "/r/")
            url = page[0].replace("&amp;", "&")
            player = {"text": "▶ Open player", "web_app": {"url": url}}
            assert (status.markup or {})["inline_keyboard"][0] == [player]

            # in a group Telegram has no Mini Apps: the same page, as a link button
            group = group_chat()
            in_group = api.send(group, ANA, audio=audio(api, song, "audio/wav"))
            command = api.send(group, ANA, "/stem", reply_to=in_group)
            there = await api.wait_for(lambda: api.reply_to(command), what="the group's status")
            await api.wait_for(lambda: is_final(there), what="the group's final message")
            [button] = (there.markup or {})["inline_keyboard"][0]
            assert button == {"text": "▶ Open player", "url": url}
        finally:
            for task in bot.runs:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
