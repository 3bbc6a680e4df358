"""Who gets which language: Telegram's language_code, the /settings choice over it, English for
the rest; and the command menus in every language.

Expected texts come from the catalogues and must be translations (tests/bots/telegram/langs.py):
these tests fail until the catalogues of their languages are filled in.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

from bots.telegram.store import Store
from shared import limits
from shared.errors import Cancelled, NotAudio, TooLong, UnsupportedSite
from shared.i18n import texts
from tests.bots.telegram.conftest import BotRunner
from tests.bots.telegram.fake_bot_api import (
    FakeBotApi,
    Shown,
    audio,
    document,
    is_final,
    private_chat,
)
from tests.bots.telegram.langs import AUTOMATIC, SETTINGS, START, before, tr, tr_n, tr_p
from tests.bots.telegram.users import LENA, PABLO, ROOT, SOFIA, YUKI
from tests.support.audio import make_audio
from tests.support.music import MAJOR, Song, write_song
from tests.support.service import Service

ES, DE, FR = texts("es"), texts("de"), texts("fr")
LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')
#: The command menus, in English: the public one, then what the bot's admins get besides.
PUBLIC_MENU = [
    ("start", "What this bot does"),
    ("help", "How to use it, and the limits"),
    ("settings", "Default model, mode, format and language"),
    ("status", "Your songs in progress"),
    ("cancel", "Cancel your songs in progress"),
    ("stem", "Split a song: reply to it, or add a link"),
    ("forget", "Delete your data: settings, history, stems"),
]
ADMIN_MENU = [
    ("limits", "Limits here (admins)"),
    ("setlimit", "Set a limit: KEY VALUE (admins)"),
    ("resetlimit", "Back to the default: KEY (admins)"),
    ("ban", "Ban a user: id or reply (admins)"),
    ("unban", "Lift a ban: id or reply (admins)"),
    ("queue", "Songs waiting or in progress (admins)"),
    ("stats", "Jobs, minutes, failures by day (admins)"),
    ("audit", "Latest admin changes (admins)"),
]
#: Telegram's language_code of each menu (two letters), and our language for it.
MENU_LANGUAGES = {"de": "de", "es": "es", "fr": "fr", "pt": "pt_BR", "ru": "ru"}


def pdf(api: FakeBotApi) -> dict[str, Any]:
    return {"document": document(api, b"%PDF-1.7", "notes.pdf", "application/pdf")}


async def answer(
    api: FakeBotApi, sender: dict[str, Any], text: str | None = None, **media: Any
) -> Shown:
    """What the bot answers first to a message in the sender's private chat."""
    sent = api.send(private_chat(sender), sender, text, **media)
    return await api.wait_for(lambda: api.reply_to(sent), what=f"the answer to {text or media}")


async def test_a_spanish_user_gets_spanish_refusals_progress_links_and_limits(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    await bot.start()
    await Store(service.redis).set_pref(SOFIA["id"], "mode", "4")
    await limits.set_limit(service.redis, None, "jobs_per_hour", "1", "telegram:1")

    refused = await answer(api, SOFIA, **pdf(api))
    assert refused.text == "❌ " + tr(ES, NotAudio.text)

    song = write_song(tmp_path / "Canción.wav", Song("Bb", MAJOR, 93.5, "arpeggio", "four"), 3)
    sent_at = time.time()
    status = await answer(api, SOFIA, audio=audio(api, song, "audio/wav"))
    await api.wait_for(lambda: is_final(status), what="the links")
    done_at = time.time()

    first, *progress, last = status.texts
    assert first == "🎵 Canción\n" + tr(ES, "📥 Getting the file from Telegram…")
    lines = (
        tr(ES, "⏳ Waiting for a worker…"),
        tr(ES, "⏳ In the queue: next up"),
        tr(ES, "🔎 Reading the audio…"),
        before(tr(ES, "🎛 Separating {bar} {percent}%", bar="\0", percent="\0")),
        tr(ES, "💾 Encoding the stems…"),
    )
    assert progress, status.texts
    for shown in progress:
        assert shown.startswith("🎵 Canción\n"), shown
        assert shown.split("\n", 1)[1].startswith(lines), shown
    cancel = {
        "inline_keyboard": [[{"text": tr_p(ES, "button", "Cancel"), "callback_data": "cancel"}]]
    }
    assert all(markup == cancel for _, _, markup in status.versions[1:-1])

    done = last.splitlines()
    assert done[:4] == [
        tr(ES, "✅ Done: {title}", title="Canción"),
        f"htdemucs · {tr_p(ES, 'mode', '4 stems')} · MP3",
        f"🎼 {tr_p(ES, 'key', '{tonic} major', tonic='B♭')} · 93,5 BPM",
        "",
    ]
    ttl = service.settings.storage.link_ttl_s
    valid_until = {
        tr(ES, "Download links, valid until {expires}:", expires=ES.moment(at + ttl))
        for at in range(int(sent_at), int(done_at) + 2)
    }
    assert done[4] in valid_until, done[4]
    page, *links = LINK.findall(last)
    assert page[1] == tr(ES, "▶ Listen, mix and download")
    player = {
        "text": "▶ " + tr_p(ES, "button", "Open player"),
        "url": page[0].replace("&amp;", "&"),
    }
    assert (status.markup or {})["inline_keyboard"][0] == [player]
    without = [
        "🎚 " + tr_p(ES, "stem", "without {stem}", stem=tr_p(ES, "stem", stem))
        for stem in ("vocals", "drums", "bass")
    ]
    assert status.buttons[1:] == [*without, "🎛 " + tr_p(ES, "button", "Custom mix…")]
    stems = [tr_p(ES, "stem", name) for name in ("drums", "bass", "other", "vocals")]
    assert [name for _, name in links] == [*stems, tr(ES, "all stems (zip)")]

    again = await answer(api, SOFIA, audio=audio(api, song, "audio/wav"))
    await api.wait_for(lambda: "❌" in (again.text or ""), what="the limit")
    assert again.text == "🎵 Canción\n❌ " + tr_n(
        ES,
        "You can start {n} song an hour. Try again in {retry}.",
        "You can start {n} songs an hour. Try again in {retry}.",
        1,
        retry=ES.wait(3600),
    )


async def test_the_language_chosen_in_settings_beats_telegrams(
    bot: BotRunner, api: FakeBotApi, service: Service
) -> None:
    await bot.start()
    store = Store(service.redis)
    panel = await answer(api, PABLO, "/settings")
    values = {"model": "htdemucs", "format": "MP3"}
    assert panel.text == tr(
        ES,
        SETTINGS,
        mode=ES.p_("mode", "Ask each time"),
        files=ES.p_("setting", "on"),
        language=ES._(AUTOMATIC),
        **values,
    )
    assert panel.buttons[-7:] == [
        "English",
        "Deutsch",
        "Español",
        "Français",
        "Português (Brasil)",
        "Русский",
        "✓ " + ES._(AUTOMATIC),
    ]

    query = api.press(PABLO, panel, "Français")
    await api.wait_for(lambda: "✓ Français" in panel.buttons, what="French chosen")
    assert (await store.prefs(PABLO["id"])).lang == "fr"
    assert "Français" in (panel.text or "")
    assert api.toasts(query) == [tr(FR, "Saved.")]
    assert panel.text == tr(
        FR,
        SETTINGS,
        mode=FR.p_("mode", "Ask each time"),
        files=FR.p_("setting", "on"),
        language="Français",
        **values,
    )
    assert (await answer(api, PABLO, "/start")).text == tr(FR, START)
    assert (await answer(api, PABLO, **pdf(api))).text == "❌ " + tr(FR, NotAudio.text)

    api.press(PABLO, panel, FR._(AUTOMATIC))
    await api.wait_for(lambda: "✓ " + ES._(AUTOMATIC) in panel.buttons, what="back to auto")
    assert (await store.prefs(PABLO["id"])).lang is None
    assert (await answer(api, PABLO, "/start")).text == tr(ES, START)


async def test_command_menus_are_registered_in_every_language(
    bot: BotRunner, api: FakeBotApi
) -> None:
    await bot.start(telegram_admin_ids=[ROOT["id"]])
    calls = api.of("setMyCommands")
    public = {
        c.params.get("language_code"): c.params["commands"]
        for c in calls
        if "scope" not in c.params
    }
    admins = {
        c.params.get("language_code"): c.params["commands"] for c in calls if "scope" in c.params
    }
    assert (
        sorted(public, key=str)
        == sorted(admins, key=str)
        == sorted([None, *MENU_LANGUAGES], key=str)
    )

    def menu(lang: str | None, entries: list[tuple[str, str]]) -> list[dict[str, str]]:
        if lang is None:
            return [{"command": name, "description": about} for name, about in entries]
        t = texts(lang)
        return [{"command": name, "description": tr(t, about)} for name, about in entries]

    in_admins_menu = [*PUBLIC_MENU[:-1], *ADMIN_MENU, PUBLIC_MENU[-1]]
    assert public[None] == menu(None, PUBLIC_MENU)
    assert admins[None] == menu(None, in_admins_menu)
    for code, lang in MENU_LANGUAGES.items():
        assert public[code] == menu(lang, PUBLIC_MENU), code
        assert admins[code] == menu(lang, in_admins_menu), code


async def test_a_language_the_bot_does_not_speak_gets_english(
    bot: BotRunner, api: FakeBotApi
) -> None:
    await bot.start()
    assert (await answer(api, YUKI, "/start")).text == START
    assert (await answer(api, YUKI, **pdf(api))).text == "❌ " + NotAudio().user_message
    panel = await answer(api, YUKI, "/settings")
    assert (panel.text or "").endswith("\nLanguage: Automatic (from Telegram)\n\nTap to change.")


async def test_a_german_user_gets_german_refusals_help_queue_status_and_cancel(
    bot: BotRunner, api: FakeBotApi, service: Service, tmp_path: Path
) -> None:
    # no download worker takes this queue: the links wait there (and we need no network)
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"
    settings.limits.max_duration_s = 2
    await bot.start(settings)
    await Store(service.redis).set_pref(LENA["id"], "mode", "2")

    other_site = await answer(api, LENA, "https://soundcloud.com/band/song")
    assert other_site.text == "❌ " + tr(DE, UnsupportedSite.text)
    long_one = await answer(
        api, LENA, audio=audio(api, make_audio(tmp_path / "Long one.mp3", seconds=3.0))
    )
    await api.wait_for(lambda: "❌" in (long_one.text or ""), what="the refusal")
    reason = tr(DE, TooLong.text, duration="0:03", limit="0:02")
    assert long_one.text == "🎵 Long one\n❌ " + reason
    help_text = (await answer(api, LENA, "/help")).text or ""
    cloud = tr(
        DE,
        "Telegram only lets bots fetch files up to {cloud_mb} MB: for bigger ones, send a "
        "YouTube link.",
        cloud_mb="20",
    )
    assert f" {cloud}\n" in help_text

    status = await answer(api, LENA, "https://www.youtube.com/watch?v=aaaaaaaaaaa&t=3")
    title = tr(DE, "YouTube video {video_id}", video_id="aaaaaaaaaaa")
    queued = tr(DE, "⏳ In the queue: next up") + " " + tr(DE, "· about {eta}", eta=DE.eta(60))
    await api.wait_for(lambda: status.text == f"🎵 {title}\n{queued}", what="the queue")
    assert status.buttons == [tr_p(DE, "button", "Cancel")]
    listing = await answer(api, LENA, "/status")
    assert listing.text == (
        tr(DE, "Your songs in progress:") + f"\n• {title}: " + tr_p(DE, "job state", "queued")
    )
    cancelled = await answer(api, LENA, "/cancel")
    assert cancelled.text == tr_n(DE, "Cancelled: {n}.", "Cancelled: {n}.", 1)
    await api.wait_for(lambda: is_final(status), what="cancelled")
    assert status.text == f"🎵 {title}\n🚫 " + tr(DE, Cancelled.text)
    assert (await answer(api, LENA, "/cancel")).text == tr(DE, "Nothing to cancel.")
