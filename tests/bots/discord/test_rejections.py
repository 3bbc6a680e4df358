"""Every refusal of /stem and "Split stems": a private message with the reason, nothing kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from shared.errors import ReferencesOtherFiles
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import EPHEMERAL, FakeDiscord
from tests.bots.discord.test_stem import wav
from tests.support.hostile_files import canary, write_hostile
from tests.support.service import Service


async def private_answer(api: FakeDiscord, payload: dict[str, Any]) -> str:
    """The ephemeral text the user got: the immediate answer, or a followup after a defer."""
    token = payload["token"]

    def answered(a: FakeDiscord) -> dict[str, Any] | None:
        for call in a.calls_to("POST", f"/interactions/{payload['id']}/{token}/callback"):
            if call.json["type"] == 4:
                return dict(call.json["data"])
        for call in a.followups(token):
            return call.json
        return None

    data = await api.wait_for(answered)
    assert int(data.get("flags") or 0) & EPHEMERAL, data
    return str(data["embeds"][0]["description"])


USAGE = (
    "❌ Give me exactly one song: `/stem file:<audio file>` or `/stem url:<YouTube link>`. You "
    "can also right-click a message with an audio file or a YouTube link → Apps → **Split stems**."
)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda api, tmp: api.stem_command(), USAGE),
        (
            lambda api, tmp: api.stem_command(
                file=api.attachment("a.wav", b"x", "audio/wav"), url="https://youtu.be/dQw4w9WgXcQ"
            ),
            USAGE,
        ),
        (
            lambda api, tmp: api.stem_command(
                file=api.attachment("doc.pdf", b"%PDF", "application/pdf")
            ),
            "❌ That attachment is not an audio or video file (`application/pdf`). Send an mp3, "
            "m4a, ogg, opus, flac, wav, webm or mp4 file.",
        ),
        (
            lambda api, tmp: api.stem_command(url="https://vimeo.com/12345"),
            "❌ I can only fetch songs from YouTube links. For any other site, download the audio "
            "yourself and send me the file.",
        ),
        (
            lambda api, tmp: api.stem_command(url="not a link"),
            "❌ That doesn't look like a link. Send a YouTube video link (youtube.com/watch?v=... "
            "or youtu.be/...) or an audio file.",
        ),
        (
            lambda api, tmp: api.stem_command(url="https://www.youtube.com/playlist?list=PL123"),
            "❌ That's a link to a playlist or a channel, not to one video. Open the song you want "
            "and send me the link of that one video.",
        ),
    ],
    ids=["neither", "both", "not-audio", "other-site", "not-a-link", "playlist"],
)
async def test_refused_at_once_in_private(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path, make: Any, expected: str
) -> None:
    await bot.start()
    payload = bot.feed(api.interaction(2, make(api, tmp_path)))
    assert await private_answer(api, payload) == expected
    assert all(m["flags"] & EPHEMERAL for m in api.messages.values())  # nothing public
    assert await service.redis.keys("stembot:request:*") == []


async def test_too_large_by_its_declared_size(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    file = api.attachment("big.mp3", b"x", "audio/mpeg")
    file["size"] = 60 * 1024 * 1024
    payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
    assert await private_answer(api, payload) == (
        "❌ That file is too large (60 MB). The limit is 50 MB: send a shorter or more "
        "compressed file."
    )
    assert api.calls_to("GET", "/cdn/") == []


async def test_missing_channel_permissions(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    perms = discord.Permissions(view_channel=True, send_messages=True)
    file = api.attachment("a.wav", wav(tmp_path), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file), app_permissions=perms.value))
    assert await private_answer(api, payload) == (
        "❌ I am missing **Embed Links**, **Read Message History** in this channel, so I could "
        "not post your stems here. Ask a server admin to give me those permissions here, or "
        "use /stem in another channel."
    )


async def test_unreadable_file_replaces_the_status_message_with_a_private_reason(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    file = api.attachment("broken.mp3", b"\xff\xfb" + b"garbage" * 500, "audio/mpeg")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
    assert await private_answer(api, payload) == (
        "❌ I couldn't read that file: it looks damaged or isn't a format I know. Try exporting "
        "it again as mp3 or wav."
    )
    token = payload["token"]
    assert api.calls_to("DELETE", f"/{token}/messages/@original")
    assert api.original(token) is None  # the public "thinking…" message is gone
    assert service.uploads() == [] and service.tmp_leftovers() == []


async def test_split_stems_on_a_message_without_a_song(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    message = api.user_message("nice song, right?")
    payload = bot.feed(api.interaction(2, api.split_menu(message)))
    assert await private_answer(api, payload) == (
        "❌ That message has no audio file or YouTube link. Use **Split stems** on a message with "
        "an audio/video attachment or a YouTube video link."
    )


@pytest.mark.parametrize("name", ["hls-absolute-path", "hls-master-file", "ffconcat-relative"])
async def test_playlists_and_scripts_are_refused_unopened(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path, name: str
) -> None:
    """A file whose content names other files (the server's own) is refused, never read."""
    await bot.start()
    async with canary(tmp_path / "canary") as bait:
        hostile = write_hostile(tmp_path, name, bait).read_bytes()
        file = api.attachment("song.mp3", hostile, "audio/mpeg")
        payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
        assert await private_answer(api, payload) == "❌ " + ReferencesOtherFiles().user_message
        bait.assert_untouched()
    assert await service.redis.zcard(service.settings.redis.queue_name) == 0
    assert service.uploads() == [] and service.tmp_leftovers() == []
