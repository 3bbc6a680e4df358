"""Backing tracks and custom mixes from the buttons under a done song: the real bot, worker
(the mix is rendered from the song's kept master, on the download queue) and web server."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from bots.telegram.store import Store
from shared import keys
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import (
    FakeBotApi,
    Shown,
    audio,
    group_chat,
    is_final,
    private_chat,
)
from tests.bots.telegram.users import ANA, BOB
from tests.support.audio import make_audio, wav_samples
from tests.support.service import Service

LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')
BACKING = ["🎚 without vocals", "🎚 without drums", "🎚 without bass"]
CUSTOM = "🎛 Custom mix…"


async def done_song(
    api: FakeBotApi, service: Service, tmp_path: Path, chat: dict | None = None, fmt: str = "wav"
) -> Shown:
    """Ana sends a song (4 stems, ``fmt``) and it is split: its final message."""
    store = Store(service.redis)
    await store.set_pref(ANA["id"], "mode", "4")
    await store.set_pref(ANA["id"], "format", fmt)
    await store.set_pref(ANA["id"], "files", "0")
    song = make_audio(tmp_path / "Riff.wav", seconds=4.0)
    if chat is None:
        sent = api.send(private_chat(ANA), ANA, audio=audio(api, song, "audio/wav"))
    else:  # in a group: /stem in reply to the song
        posted = api.send(chat, ANA, audio=audio(api, song, "audio/wav"))
        sent = api.send(chat, ANA, "/stem", reply_to=posted)
    status = await api.wait_for(lambda: api.reply_to(sent), what="the status message")
    await api.wait_for(lambda: is_final(status), what="the song's final", within=60)
    assert (status.text or "").startswith("✅ Done: Riff"), status.text
    return status


def answer_to(api: FakeBotApi, status: Shown, after: int) -> Shown | None:
    """The bot's message answering the song's final, sent after message ``after``."""
    for shown in api.messages(status.chat_id):
        if shown.reply_to == status.message_id and shown.message_id > after and not shown.audio:
            return shown
    return None


async def wav_of(url: str) -> np.ndarray:
    """A link in a Telegram message (HTML: its ``&`` escaped) to a wav file: its samples."""
    return await wav_samples(url.replace("&amp;", "&"))


async def test_backing_track_and_custom_mix_from_the_buttons(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    status = await done_song(api, service, tmp_path)
    assert status.buttons == ["▶ Open player", *BACKING, CUSTOM]
    stems = {name: url for url, name in LINK.findall(status.text or "")}

    # one tap: the song without drums, on a message of its own answering the song's
    last = max(s.message_id for s in api.messages(status.chat_id))
    query = api.press(ANA, status, "🎚 without drums")
    mix = await api.wait_for(lambda: answer_to(api, status, last), what="the mix's message")
    await api.wait_for(lambda: is_final(mix), what="the mix's final")
    assert api.toasts(query) == [""]
    assert mix.texts[0] == "🎵 Riff · without drums\n⏳ Waiting for a worker…"
    lines = (mix.text or "").splitlines()
    assert lines[:2] == ["✅ Done: Riff", "htdemucs · without drums · WAV"], mix.text
    links = LINK.findall(mix.text or "")
    # one file: no zip of it (it would only double what is kept)
    assert [name for _, name in links][1:] == ["without drums"]
    # a mix offers no mixes of its own
    assert "🎚 without vocals" not in mix.buttons and CUSTOM not in mix.buttons
    # it is the sum of the song's other stems (each rounded to 16 bits once: within 3 LSB)
    got = await wav_of(links[1][0])
    parts = [await wav_of(stems[name]) for name in ("bass", "other", "vocals")]
    assert got.shape == parts[0].shape and np.abs(got).max() > 0.01
    assert np.abs(got - sum(parts)).max() < 4 / 32768

    # the custom chooser: every stem ticked; Ana keeps drums and bass
    api.press(ANA, status, CUSTOM)
    ticked = ["✅ drums", "✅ bass", "✅ other", "✅ vocals", "🎧 Make this mix", "↩ Back"]
    await api.wait_for(lambda: status.buttons == ticked, what="the chooser")
    # every stem kept is the song itself: said at the button, nothing posted
    last = max(s.message_id for s in api.messages(status.chat_id))
    query = api.press(ANA, status, "🎧 Make this mix")
    await api.wait_for(lambda: api.toasts(query), what="the refusal")
    assert api.toasts(query) == [
        "A mix of every stem is the whole song: leave out at least one stem "
        "(for example the vocals, for karaoke)."
    ]
    for label in ("✅ other", "✅ vocals"):
        api.press(ANA, status, label)
        await api.wait_for(lambda label=label: "⬜" + label[1:] in status.buttons, what=label)
    assert status.buttons == ["✅ drums", "✅ bass", "⬜ other", "⬜ vocals", *ticked[4:]]
    api.press(ANA, status, "🎧 Make this mix")
    mix = await api.wait_for(lambda: answer_to(api, status, last), what="the custom mix")
    await api.wait_for(lambda: is_final(mix), what="the custom mix's final")
    assert (mix.text or "").splitlines()[1] == "htdemucs · drums + bass · WAV"
    [(url, name)] = LINK.findall(mix.text or "")[1:2]
    assert name == "drums + bass" and "mix_drums_bass.wav" in url
    # back to the backing tracks
    api.press(ANA, status, "↩ Back")
    await api.wait_for(lambda: status.buttons[-1] == CUSTOM, what="the backing tracks again")
    assert status.buttons == ["▶ Open player", *BACKING, CUSTOM]


async def test_mix_refusals_are_said_where_they_happen(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.limits.mixes_per_hour = 1
    await bot.start(settings)
    group = group_chat()
    status = await done_song(api, service, tmp_path, chat=group, fmt="mp3")
    # in a group the player is a link button, and anyone may ask for a mix: Bob, in his name
    assert status.buttons == ["▶ Open player", *BACKING, CUSTOM]
    last = max(s.message_id for s in api.messages(group["id"]))
    api.press(BOB, status, "🎚 without vocals")
    first = await api.wait_for(lambda: answer_to(api, status, last), what="Bob's mix")
    await api.wait_for(lambda: is_final(first), what="Bob's mix's final")
    assert "✅ Done: Riff" in (first.text or "")
    # his second mix this hour is over the limit: said on its own message
    last = first.message_id
    api.press(BOB, status, "🎚 without bass")
    second = await api.wait_for(lambda: answer_to(api, status, last), what="the refusal")
    await api.wait_for(lambda: "❌" in (second.text or ""), what="the refusal's text")
    assert re.fullmatch(
        r"🎵 Riff · without bass\n❌ You can make 1 mix an hour\. Try again in (1 h|\d+ min)\.",
        second.text or "",
    ), second.text
    # Ana's count is her own
    last = second.message_id
    api.press(ANA, status, "🎚 without bass")
    hers = await api.wait_for(lambda: answer_to(api, status, last), what="Ana's mix")
    await api.wait_for(lambda: is_final(hers), what="Ana's mix's final")
    assert "✅ Done: Riff" in (hers.text or "")

    # the song's kept stems are gone: said at the button, nothing posted
    await service.redis.delete(*[k async for k in service.redis.scan_iter(keys.master("*"))])
    last = max(s.message_id for s in api.messages(group["id"]))
    query = api.press(ANA, status, "🎚 without drums")
    await api.wait_for(lambda: api.toasts(query), what="the refusal")
    assert api.toasts(query) == [
        "The stems of this song are no longer kept, so I can't mix them. Please send it again."
    ]
    assert max(s.message_id for s in api.messages(group["id"])) == last
