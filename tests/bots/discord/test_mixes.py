"""Custom mixes from the menu under a done song: the real discord.py client against the fake
Discord, the real worker (the mix is rendered from the song's kept master) and web server."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from arq.connections import ArqRedis

from bots.discord.presenter import STREAM
from shared import keys, limits
from shared.errors import MixExpired
from shared.i18n import texts
from shared.redis_server import free_port
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import EPHEMERAL, OTHER_ID, USER_ID, FakeDiscord
from tests.bots.discord.test_rejections import private_answer
from tests.bots.discord.test_stem import buttons, description, is_over, link_buttons
from tests.support.audio import make_audio, wav_samples
from tests.support.service import Service
from tests.support.streams import settled

# aiohttp's multipart reader (the fake Discord reading attached files) calls its deprecated
# StreamReader.unread_data() when it meets a boundary: not something this code can avoid.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:unread_data\(\) is deprecated:DeprecationWarning:aiohttp.multipart"
)
LINK = re.compile(r"\*\*\[([^\]]+)\]\(([^)]+)\)\*\*")
PLACEHOLDER = "Make a backing track: choose the stems to keep"
EXPIRED = "❌ The stems of this song are no longer kept, so I can't mix them. Please send it again."


def selects(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's select menus, as the bot sent them."""
    rows = message.get("components") or []
    return [c for row in rows for c in row["components"] if c["type"] == 3]


async def done_song(bot: BotRunner, api: FakeDiscord, tmp_path: Path, fmt: str) -> dict[str, Any]:
    """/stem with a song (4 stems, ``fmt``), split: its final message."""
    song = make_audio(tmp_path / "Riff.wav", seconds=3.0)
    file = api.attachment("Riff.wav", song.read_bytes(), "audio/wav")
    token = bot.feed(api.interaction(2, api.stem_command(file=file, format=fmt)))["token"]
    status = await api.wait_for(
        lambda a: is_over(a.original(token)) and a.original(token), within_s=60
    )
    assert description(status).startswith("✅ Done! Download your stems:"), description(status)
    return dict(status)


def choose(
    api: FakeDiscord, status: dict[str, Any], values: list[str], **who: Any
) -> dict[str, Any]:
    """The stems ``values`` chosen in the mix menu under ``status``."""
    [menu] = selects(status)
    return api.interaction(3, api.select(menu["custom_id"], values), message=status, **who)


async def mix_final(api: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    token = payload["token"]
    final = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    return dict(final)


async def test_a_mix_from_the_menu_under_a_done_song(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    status = await done_song(bot, api, tmp_path, "wav")
    # the menu, under the player: one option per stem of the model, never all of them
    [menu] = selects(status)
    assert status["components"][1]["components"] == [menu]
    key = menu["custom_id"].removeprefix("stembot:mix:")
    assert re.fullmatch("[0-9a-f]{32}", key) and await service.redis.exists(keys.result(key))
    assert menu["placeholder"] == PLACEHOLDER
    assert (menu["min_values"], menu["max_values"]) == (1, 3)
    assert [(o["label"], o["value"]) for o in menu["options"]] == [
        ("drums", "drums"),
        ("bass", "bass"),
        ("other", "other"),
        ("vocals", "vocals"),
    ]
    stems = {name: url for name, url in LINK.findall(description(status))}

    # someone else in the channel keeps bass and drums: a message of their own, in their name
    # and their language
    before = set(api.messages)
    payload = bot.feed(choose(api, status, ["bass", "drums"], user_id=OTHER_ID, locale="de"))
    mix = await mix_final(api, payload)
    assert set(api.messages) - before == {int(mix["id"])}
    # the menu is shown unchosen again (Discord would not send the same choice twice): the
    # song's components sent back as they were
    [reset] = [c.json for c in api.calls_to("PATCH", f"/messages/{status['id']}")]
    [again] = selects(reset)
    assert (again["custom_id"], again["options"]) == (menu["custom_id"], menu["options"])
    assert reset["components"][0] == status["components"][0]  # the player's link button
    callbacks = api.calls_to("POST", f"/interactions/{payload['id']}/")
    assert [c.json["type"] for c in callbacks] == [5]  # a public "thinking…", then the status
    assert not int((callbacks[0].json.get("data") or {}).get("flags") or 0) & EPHEMERAL
    edits = [c.json for c in api.calls_to("PATCH", "/webhooks/") if payload["token"] in c.path]
    de = texts("de")
    drums_bass = f"{de.p_('stem', 'drums')} + {de.p_('stem', 'bass')}"
    assert drums_bass == "Schlagzeug + Bass"
    # the delivery edits it as any song's status: the mix's title throughout
    title = f"🎵 Riff — {drums_bass}"
    assert {e["embeds"][0]["title"] for e in edits if e.get("embeds")} == {title}
    embed = mix["embeds"][0]
    assert embed["title"] == title
    assert embed["footer"]["text"] == f"htdemucs · {drums_bass} · wav"
    text = embed["description"]
    assert text.startswith(de._("✅ Done! Download your mix:") + "\n")
    [(_, page), (label, url)] = LINK.findall(text)
    assert label == drums_bass and url.split("?")[0].endswith("/mix_drums_bass.wav")
    assert "zip" not in text
    # the player, no menu: a mix offers no mixes of its own; the file is attached
    assert link_buttons(mix) == [(de.p_("button", "Open player"), page)]
    assert selects(mix) == [] and buttons(mix) == []
    assert mix["files"] == ["Riff - mix_drums_bass.wav"]
    # it counted against the chooser's mixes, not the song's owner's
    assert await service.redis.zcard(keys.limit_mixes(f"discord:{OTHER_ID}")) == 1
    assert await service.redis.zcard(keys.limit_mixes(f"discord:{USER_ID}")) == 0

    # really the sum of the song's drums and bass (each rounded to 16 bits once)
    got = await wav_samples(url)
    parts = [await wav_samples(stems[name]) for name in ("drums", "bass")]
    assert got.shape == parts[0].shape and np.abs(got).max() > 0.01
    assert np.abs(got - sum(parts)).max() < 4 / 32768


async def test_mix_refusals_are_said_privately(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.limits.mixes_per_hour = 1
    await bot.start(settings)
    status = await done_song(bot, api, tmp_path, "mp3")
    await settled(service.redis, STREAM)
    await bot.stop()

    # a new process: the menu of the old message still works
    await bot.start(settings)
    first = await mix_final(api, bot.feed(choose(api, status, ["vocals"])))
    assert first["embeds"][0]["title"] == "🎵 Riff — vocals"
    assert description(first).startswith("✅ Done! Download your mix:")
    assert first["files"] == ["Riff - mix_vocals.mp3"]

    # the hour's mixes are used: said privately, and the status message goes
    before = set(api.messages)
    over = bot.feed(choose(api, status, ["drums", "bass"]))
    answer = await private_answer(api, over)
    assert re.fullmatch(r"❌ You can make 1 mix an hour\. Try again in (1 h|\d+ min)\.", answer)
    assert api.original(over["token"]) is None
    assert all(int(api.messages[m]["flags"]) & EPHEMERAL for m in set(api.messages) - before)
    # every stem is the song itself (Discord's menu does not let it be chosen)
    every = bot.feed(choose(api, status, ["vocals", "drums", "bass", "other"]))
    assert await private_answer(api, every) == (
        "❌ A mix of every stem is the whole song: leave out at least one stem "
        "(for example the vocals, for karaoke)."
    )
    # a ban holds for mixes too
    await limits.ban(service.redis, f"discord:{USER_ID}", "test:admin")
    banned = bot.feed(choose(api, status, ["drums"]))
    assert await private_answer(api, banned) == "❌ You are banned from using this bot."

    # the song's kept stems are gone: said at once, nothing posted, in the chooser's language
    await service.redis.delete(*[k async for k in service.redis.scan_iter(keys.master("*"))])
    gone = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID))
    assert await private_answer(api, gone) == EXPIRED
    german = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID, locale="de"))
    assert await private_answer(api, german) == "❌ " + MixExpired().message(texts("de"))
    assert MixExpired().message(texts("de")) != EXPIRED.removeprefix("❌ ")
    assert [c.json["type"] for c in api.calls_to("POST", f"/interactions/{gone['id']}/")] == [4]
    # its links expired (Redis dropped its result); the run's record says how it ended
    key = selects(status)[0]["custom_id"].removeprefix("stembot:mix:")
    await service.redis.delete(keys.result(key))
    expired = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID))
    assert await private_answer(api, expired) == EXPIRED
    await service.redis.hset(keys.job(key), "state", "failed")
    failed = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID))
    assert await private_answer(api, failed) == (
        "❌ This song has no stems to mix: it failed or was cancelled. Please send it again."
    )
    await service.redis.hset(keys.job(key), "state", "separating")
    again = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID))
    assert await private_answer(api, again) == (
        "❌ This song isn't finished yet. Ask for the mix once its stems are ready."
    )
    assert await service.redis.zcard(keys.limit_mixes(f"discord:{OTHER_ID}")) == 0

    # Redis unreachable (the bot's connection goes to a port nobody listens on)
    dead = ArqRedis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    bot.bot.deps.redis = dead
    try:
        down = bot.feed(choose(api, status, ["drums"], user_id=OTHER_ID))
        assert await private_answer(api, down) == (
            "❌ The service is busy or restarting. Please try again in a minute."
        )
    finally:
        await dead.aclose()
