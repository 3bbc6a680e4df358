"""/stem and "Split stems" through the real discord.py client, against the fake Discord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import EPHEMERAL, FakeDiscord
from tests.support.audio import make_audio
from tests.support.music import MINOR, Song, write_song
from tests.support.service import Service


def wav(tmp_path: Path, seconds: float = 2.0) -> bytes:
    return make_audio(tmp_path / "song.wav", seconds=seconds).read_bytes()


def description(message: dict[str, Any] | None) -> str:
    if not message or not message.get("embeds"):
        return ""
    return str(message["embeds"][0].get("description", ""))


def buttons(message: dict[str, Any]) -> list[str]:
    """The custom ids of a message's buttons (link buttons have none)."""
    rows = message.get("components") or []
    return [
        c["custom_id"]
        for row in rows
        for c in row["components"]
        if c["type"] == 2 and "custom_id" in c
    ]


def link_buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, URL) of a message's link buttons."""
    rows = message.get("components") or []
    return [
        (c["label"], c["url"])
        for row in rows
        for c in row["components"]
        if c["type"] == 2 and c["style"] == 5
    ]


def is_over(message: dict[str, Any] | None) -> bool:
    return description(message).startswith(("✅", "❌", "🚫"))


async def test_stem_with_a_file_ends_with_links_and_files(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    song = write_song(tmp_path / "My Song.wav", Song("E", MINOR, 140, "pad", "rock"), seed=3)
    file = api.attachment("My Song.wav", song.read_bytes(), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file)))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    # acknowledged with a public "thinking…" response first
    callbacks = api.calls_to("POST", f"/interactions/{payload['id']}/{token}/callback")
    assert [c.json["type"] for c in callbacks] == [5]
    assert not int((callbacks[0].json.get("data") or {}).get("flags") or 0) & EPHEMERAL
    edits = [c.json for c in api.calls_to("PATCH", "/webhooks/") if token in c.path]
    shown = [e["embeds"][0]["description"] for e in edits if e.get("embeds")]
    assert shown[0] == "📥 Fetching your file…"
    assert any(s.startswith("⏳ Queued") for s in shown), shown
    cancel = [e for e in edits if buttons(e)]
    assert cancel and all(b.startswith("stembot:cancel:") for e in cancel for b in buttons(e))
    embed = status["embeds"][0]
    assert embed["title"] == "🎵 My Song"
    assert embed["footer"]["text"] == "htdemucs · all stems · mp3"
    text = embed["description"]
    assert text.startswith("✅ Done! Download your stems:")
    for stem in ("vocals", "drums", "bass", "other", "All stems (zip)"):
        assert f"**[{stem}](http://127.0.0.1:" in text
    assert "Links expire <t:" in text
    assert "**[▶ Listen, mix and download](http://127.0.0.1:" in text
    page = text.split("\n")[1].removeprefix("**[▶ Listen, mix and download](").removesuffix(")**")
    assert page.startswith(service.base_url + "/r/")
    # the song's key and tempo, as the worker found them; the player under the message
    assert embed["fields"] == [
        {"name": "Key", "value": "E minor", "inline": True},
        {"name": "Tempo", "value": "140 BPM", "inline": True},
    ]
    assert buttons(status) == []
    assert link_buttons(status) == [("Open player", page)]
    assert status["components"][0]["components"][0]["emoji"]["name"] == "▶️"
    assert sorted(status["files"]) == [
        f"My Song - {s}.mp3" for s in ("bass", "drums", "other", "vocals")
    ]
    assert service.tmp_leftovers() == []
