"""Each user in their Discord client's language: refusals, the status message to its end,
limit refusals, admin answers, and the commands' names and descriptions synced to Discord.

Expected texts come from the catalogues and must differ from English. The tests taking
``catalogues`` run twice: with the real catalogues (``real``: they fail until the
translations are in) and with pseudo-translated ones built from the code's own texts
(``pseudo``: every text "... [de]", proving each one reaches the user in their language).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import discord
import pytest

from bots.discord.language import LANG_OF, slash_name
from shared import i18n
from shared.errors import Cancelled, NotAUrl
from shared.gate import Gate, LimitReached
from shared.i18n import ENGLISH, Texts, negotiate, texts
from tests.bots.discord.conftest import BotRunner
from tests.bots.discord.fake_discord import OTHER_ID, USER_ID, FakeDiscord
from tests.bots.discord.pseudo import write_pseudo_catalogues
from tests.bots.discord.test_admin import MANAGE, reply
from tests.bots.discord.test_flows import VIDEO, press
from tests.bots.discord.test_rejections import private_answer
from tests.bots.discord.test_stem import description, is_over, wav
from tests.support.music import MAJOR, Song, write_song
from tests.support.service import Service

PDF_REFUSAL = (
    "That attachment is not an audio or video file (`{type}`). Send an mp3, m4a, ogg, opus, "
    "flac, wav, webm or mp4 file."
)
#: Discord's locales for each of our languages but English.
DISCORD_TAGS = {"de": ("de",), "es": ("es-ES", "es-419"), "fr": ("fr",), "pt_BR": ("pt-BR",)}
DISCORD_TAGS["ru"] = ("ru",)


@pytest.fixture(scope="session")
def pseudo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pseudo_catalogues(tmp_path_factory.mktemp("locales"))


@pytest.fixture(params=["real", "pseudo"])
def catalogues(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real catalogues, or pseudo-translated ones."""
    if request.param == "pseudo":
        monkeypatch.setattr(i18n, "LOCALES", request.getfixturevalue("pseudo_root"))
    i18n._translations.cache_clear()
    yield request.param
    i18n._translations.cache_clear()


def tr(t: Texts, message: str, **values: Any) -> str:
    """``message`` in ``t``'s language from its catalogue, which must translate it."""
    text = t._(message, **values)
    assert text != ENGLISH._(message, **values), f"no {t.lang} translation of {message!r}"
    return text


def trp(t: Texts, context: str, message: str) -> str:
    text = t.p_(context, message)
    assert text != message, f"no {t.lang} translation of {message!r} ({context})"
    return text


async def test_a_german_user_gets_german_refusals_progress_end_and_limits(
    bot: BotRunner, api: FakeDiscord, service: Service, tmp_path: Path, catalogues: str
) -> None:
    await bot.start()
    de = texts("de")
    pdf = api.attachment("doc.pdf", b"%PDF", "application/pdf")
    refused = bot.feed(api.interaction(2, api.stem_command(file=pdf), locale="de"))
    assert await private_answer(api, refused) == "❌ " + tr(de, PDF_REFUSAL, type="application/pdf")

    song = write_song(tmp_path / "Lied.wav", Song("Bb", MAJOR, 93.5, "arpeggio", "four"), seed=3)
    file = api.attachment("Lied.wav", song.read_bytes(), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=file), locale="de"))
    token = payload["token"]
    status = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    edits = [c.json for c in api.calls_to("PATCH", "/webhooks/") if token in c.path]
    shown = [e["embeds"][0]["description"] for e in edits if e.get("embeds")]
    assert shown[0] == tr(de, "📥 Fetching your file…")
    queued = (tr(de, "⏳ Queued: you are next"), tr(de, "⏳ Waiting in the queue"))
    assert any(s.startswith(queued) for s in shown), shown
    labels = {
        c["label"]
        for e in edits
        for r in e.get("components", [])
        for c in r["components"]
        if c["type"] == 2
    }
    assert labels == {trp(de, "button", "Cancel"), trp(de, "button", "Open player")}
    embed = status["embeds"][0]
    assert embed["footer"]["text"] == f"htdemucs · {tr(de, 'all stems')} · mp3"
    assert description(status).startswith(tr(de, "✅ Done! Download your stems:") + "\n")
    assert f"**[{trp(de, 'stem', 'vocals')}](http://127.0.0.1:" in description(status)
    assert f"**[{tr(de, 'All stems (zip)')}](http://127.0.0.1:" in description(status)
    b_flat_major = de.p_("key", "{tonic} major", tonic="B♭")
    assert b_flat_major != "B♭ major"
    assert embed["fields"] == [
        {"name": trp(de, "music", "Key"), "value": b_flat_major, "inline": True},
        {"name": de.p_("music", "Tempo"), "value": "93,5 BPM", "inline": True},
    ]

    gate = Gate(service.redis, service.settings, "discord")
    await gate.admit(f"discord:{USER_ID}")  # a song in progress: the next one is refused
    with pytest.raises(LimitReached) as limit:
        await gate.admit(f"discord:{USER_ID}")
    expected = limit.value.message(de)
    assert expected != limit.value.user_message
    again = api.attachment("Noch.wav", wav(tmp_path), "audio/wav")
    payload = bot.feed(api.interaction(2, api.stem_command(file=again), locale="de"))
    assert await private_answer(api, payload) == f"❌ {expected}"


async def test_a_german_user_cancels_in_german(
    bot: BotRunner, api: FakeDiscord, service: Service, catalogues: str
) -> None:
    settings = copy.deepcopy(service.settings)
    settings.redis.download_queue_name = "test:download:nobody"  # the link waits
    await bot.start(settings)
    de = texts("de")
    payload = bot.feed(api.interaction(2, api.stem_command(url=VIDEO), locale="de"))
    token = payload["token"]
    queued = tr(de, "⏳ Queued: you are next")
    await api.wait_for(lambda a: description(a.original(token)).startswith(queued))
    status = api.original(token)
    assert status is not None

    stranger = bot.feed(press(api, status, user_id=OTHER_ID, locale="de"))
    not_yours = "Only the person who started this job (or a server admin) can cancel it."
    assert await private_answer(api, stranger) == "❌ " + tr(de, not_yours)
    bot.feed(press(api, status, locale="de"))
    final = await api.wait_for(lambda a: is_over(a.original(token)) and a.original(token))
    assert Cancelled().message(de) != Cancelled().user_message
    assert description(final) == f"🚫 {Cancelled().message(de)}"


async def test_a_german_admin_gets_german_answers(
    bot: BotRunner, api: FakeDiscord, service: Service, catalogues: str
) -> None:
    await bot.start()
    de = texts("de")
    command = api.slash("stemadmin", "set", key="jobs_per_hour", value=2)
    payload = bot.feed(api.interaction(2, command, member_permissions=MANAGE, locale="de"))
    shown = await reply(api, payload)
    assert shown["title"] == tr(de, "Limit changed")
    changed = (
        "✅ **{key}** is now **{value}** {where} (was {old}). It applies to new requests at once."
    )
    where = trp(de, "where", "in this server")
    assert shown["description"] == tr(
        de, changed, key="jobs_per_hour", value="2", where=where, old="5"
    )
    payload = bot.feed(api.interaction(2, api.slash("forget"), locale="de"))
    assert (await reply(api, payload))["title"] == tr(de, "Delete your data?")


async def test_brazilian_portuguese(
    bot: BotRunner, api: FakeDiscord, service: Service, catalogues: str
) -> None:
    await bot.start()
    pt = texts("pt_BR")
    payload = bot.feed(api.interaction(2, api.stem_command(url="not a link"), locale="pt-BR"))
    assert NotAUrl().message(pt) != NotAUrl().user_message
    assert await private_answer(api, payload) == f"❌ {NotAUrl().message(pt)}"


async def test_a_language_we_do_not_have_gets_english(
    bot: BotRunner, api: FakeDiscord, service: Service
) -> None:
    await bot.start()
    pdf = api.attachment("doc.pdf", b"%PDF", "application/pdf")
    payload = bot.feed(api.interaction(2, api.stem_command(file=pdf), locale="ja"))
    assert await private_answer(api, payload) == "❌ " + PDF_REFUSAL.format(type="application/pdf")


async def test_the_commands_carry_their_texts_in_each_language(
    bot: BotRunner, api: FakeDiscord, service: Service, catalogues: str
) -> None:
    await bot.start()
    [sync] = api.calls_to("PUT", "/commands")
    commands = {c["name"]: c for c in cast(list[dict[str, Any]], sync.json)}

    def each(find: Any) -> dict[str, str]:
        return {tag: find(texts(lang)) for lang, tags in DISCORD_TAGS.items() for tag in tags}

    def named(options: list[dict[str, Any]], name: str) -> dict[str, Any]:
        return next(o for o in options if o["name"] == name)

    stem, menu = commands["stem"], commands["Split stems"]
    assert stem["name_localizations"] == each(lambda t: catalogue(t, "command_name", "stem"))
    assert stem["description_localizations"] == each(
        lambda t: trp(t, "command_description", "Split a song into stems (vocals, drums, bass…)")
    )
    file = named(stem["options"], "file")
    assert file["name_localizations"] == each(lambda t: trp(t, "option_name", "file"))
    assert file["description_localizations"] == each(
        lambda t: trp(t, "option_description", "An audio or video file")
    )
    vocals = next(c for c in named(stem["options"], "stems")["choices"] if c["value"] == "vocals")
    assert vocals["name_localizations"] == each(lambda t: tr(t, "Vocals + instrumental (karaoke)"))
    assert menu["name_localizations"] == each(lambda t: trp(t, "command_name", "Split stems"))
    set_ = named(commands["stemadmin"]["options"], "set")
    assert set_["name_localizations"] == each(lambda t: trp(t, "command_name", "set"))
    key = named(set_["options"], "key")["choices"][0]
    assert key["value"] == "jobs_per_hour"
    assert key["name_localizations"] == each(
        lambda t: "jobs_per_hour: " + tr(t, "songs a user can start per hour")
    )
    for command in commands.values():
        assert_names_discord_accepts(command, menu=command is menu)


def catalogue(t: Texts, context: str, message: str) -> str:
    """A name the catalogue holds (it may be the English word itself: "stem")."""
    assert t.has(message, context), f"no {t.lang} translation of {message!r} ({context})"
    return t.p_(context, message)


def assert_names_discord_accepts(command: dict[str, Any], menu: bool = False) -> None:
    """Every translated name is one Discord takes, and options' names differ in each language."""
    for tag, name in (command.get("name_localizations") or {}).items():
        assert (1 <= len(name) <= 32) if menu else slash_name(name), (tag, name)
    options = command.get("options") or []
    for tag in {tag for o in options for tag in o.get("name_localizations") or {}}:
        names = [(o.get("name_localizations") or {}).get(tag, o["name"]) for o in options]
        assert len(set(names)) == len(names), (tag, names)
    for option in options:
        if option["type"] in (1, 2):  # a subcommand (group): its own name and options
            assert_names_discord_accepts(option)
        else:
            for tag, name in (option.get("name_localizations") or {}).items():
                assert slash_name(name), (tag, name)


def test_messages_and_commands_use_the_same_language_for_each_discord_locale() -> None:
    for locale in discord.Locale:
        assert negotiate(locale.value) == LANG_OF.get(locale, "en"), locale


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("stem", True),
        ("stems-trennen", True),
        ("разделить", True),
        ("Stem", False),
        ("split stems", False),
        ("", False),
        ("x" * 33, False),
    ],
)
def test_names_discord_accepts(name: str, accepted: bool) -> None:
    assert slash_name(name) is accepted
