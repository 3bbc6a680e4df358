"""Each way a song can be refused, as the user reads it; nothing is queued or kept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bots.telegram.store import Store
from shared.errors import NotAudio, ReferencesOtherFiles, TooLarge, UnsupportedSite
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import (
    FakeBotApi,
    audio,
    document,
    is_final,
    private_chat,
)
from tests.bots.telegram.users import ANA
from tests.support.audio import make_audio
from tests.support.hostile_files import canary, write_hostile
from tests.support.service import Service

MB = 1024 * 1024
TOO_BIG = (
    "❌ That file is 21 MB, but Telegram lets bots download files up to 20 MB only. Send me "
    "a YouTube link to the song instead, or a shorter or more compressed file (mp3, m4a)."
)
Make = Callable[[FakeBotApi, Path], dict[str, Any]]


def big_wav(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"document": document(api, b"RIFF", "live.wav", "audio/wav", size=21 * MB)}


def pdf(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"document": document(api, b"%PDF-1.7", "notes.pdf", "application/pdf")}


def text_as_mp3(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"document": document(api, b"just words\n" * 100, "words.mp3", "audio/mpeg")}


def three_seconds(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"audio": audio(api, make_audio(tmp / "Long one.mp3", seconds=3.0))}


def other_site(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"text": "https://soundcloud.com/band/song"}


def plain_text(api: FakeBotApi, tmp: Path) -> dict[str, Any]:
    return {"text": "hello?"}


@pytest.mark.parametrize(
    ("sender", "make", "expected"),
    [
        (ANA, big_wav, TOO_BIG),
        (ANA, pdf, "❌ " + NotAudio().user_message),
        (ANA, text_as_mp3, "🎵 words\n❌ " + NotAudio().user_message),
        (
            ANA,
            three_seconds,
            "🎵 Long one\n❌ That track is 0:03 long; the limit is 0:02. "
            "Send a shorter cut of the song.",
        ),
        (ANA, other_site, "❌ " + UnsupportedSite().user_message),
        (ANA, plain_text, "Send me an audio file, a voice message, a video or a YouTube link."),
    ],
    ids=[
        "over-telegram-20MB",
        "pdf",
        "text-named-mp3",
        "too-long",
        "other-site",
        "no-song",
    ],
)
async def test_refused(
    bot: BotRunner,
    api: FakeBotApi,
    service: Service,
    tmp_path: Path,
    sender: dict[str, Any],
    make: Make,
    expected: str,
) -> None:
    service.settings.limits.max_duration_s = 2
    await Store(service.redis).set_pref(sender["id"], "mode", "4")
    await bot.start()
    sent = api.send(private_chat(sender), sender, **make(api, tmp_path))
    status = await api.wait_for(lambda: api.reply_to(sent), what="the answer")
    await api.wait_for(lambda: status.text == expected or is_final(status), what="the reason")
    assert status.text == expected
    assert status.markup is None
    if make is big_wav:
        assert api.of("getFile") == []  # refused before downloading anything
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert service.uploads() == []
    assert service.tmp_leftovers() == []


async def test_local_bot_api_server_lifts_telegrams_limit_but_not_ours(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    api.local_files = True  # getFile answers with paths on this machine, like --local
    await bot.start(telegram_local_mode=True)
    await Store(service.redis).set_pref(ANA["id"], "mode", "2")
    chat = private_chat(ANA)

    huge = api.send(chat, ANA, document=document(api, b"RIFF", "set.wav", "audio/wav", 60 * MB))
    refused = await api.wait_for(lambda: api.reply_to(huge), what="the answer")
    assert refused.text == "❌ " + TooLarge(50 * MB, 60 * MB).user_message
    assert refused.text == (
        "❌ That file is too large (60 MB). The limit is 50 MB: send a shorter or more "
        "compressed file."
    )

    # over Telegram's 20 MB as declared, within ours: read in place, never downloaded
    song = make_audio(tmp_path / "Big mix.wav", seconds=3.0)
    big = api.send(chat, ANA, document=document(api, song, "Big mix.wav", "audio/wav", 25 * MB))
    status = await api.wait_for(lambda: api.reply_to(big), what="the status")
    await api.wait_for(lambda: is_final(status), what="the links")
    assert status.texts[-1].startswith("✅ Done: Big mix\nhtdemucs · Vocals + instrumental · MP3")
    assert api.file_downloads == []

    helped = api.send(chat, ANA, "/help")
    help_text = (await api.wait_for(lambda: api.reply_to(helped), what="/help")).text or ""
    assert "Limits: songs up to 10 min, files up to 50 MB.\n" in help_text
    assert "20 MB" not in help_text


async def test_help_names_the_cloud_limit(bot: BotRunner, api: FakeBotApi) -> None:
    await bot.start()
    helped = api.send(private_chat(ANA), ANA, "/help")
    help_text = (await api.wait_for(lambda: api.reply_to(helped), what="/help")).text or ""
    assert (
        "Limits: songs up to 10 min, files up to 50 MB. Telegram only lets bots fetch files up "
        "to 20 MB: for bigger ones, send a YouTube link.\n" in help_text
    )


@pytest.mark.parametrize(
    ("name", "file_name", "mime"),
    [
        ("hls-absolute-path", "song.mp3", "audio/mpeg"),
        ("hls-file-url", "list.m3u8", "audio/x-mpegurl"),
        ("ffconcat-relative", "song.mp3", "audio/mpeg"),
        ("sbaGen-script", "song.mp3", "audio/mpeg"),
    ],
)
async def test_playlists_and_scripts_are_refused_unopened(
    bot: BotRunner,
    api: FakeBotApi,
    service: Service,
    tmp_path: Path,
    name: str,
    file_name: str,
    mime: str,
) -> None:
    """A file whose content names other files (the server's own) is refused, never read."""
    await Store(service.redis).set_pref(ANA["id"], "mode", "4")
    await bot.start()
    async with canary(tmp_path / "canary") as bait:
        hostile = write_hostile(tmp_path, name, bait)
        sent = api.send(private_chat(ANA), ANA, document=document(api, hostile, file_name, mime))
        status = await api.wait_for(lambda: api.reply_to(sent), what="the answer")
        await api.wait_for(lambda: is_final(status) or "❌" in (status.text or ""), what="why")
        title = file_name.rsplit(".", 1)[0]
        assert status.text == f"🎵 {title}\n❌ " + ReferencesOtherFiles().user_message
        bait.assert_untouched()
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert service.uploads() == []
    assert service.tmp_leftovers() == []
