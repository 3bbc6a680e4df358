"""The language catalogues: complete, in step with the code, and well-formed in every language."""

from __future__ import annotations

import re
import unicodedata

import pytest
from babel.messages.catalog import Catalog, Message

from shared import errors
from shared.i18n import LANGUAGES, from_accept_language, negotiate, placeholders, texts
from shared.i18n.catalogs import extract, read, translated

TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]


@pytest.fixture(scope="module")
def code() -> Catalog:
    return extract()


def _key(message: Message) -> tuple[str, str | None]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid, message.context


def _ids(catalog: Catalog) -> set[tuple[str, str | None]]:
    return {_key(m) for m in catalog if m.id}


def _forms(message: Message) -> list[str]:
    """The translation's forms (one, or one per plural form of the language)."""
    if isinstance(message.string, (tuple, list)):
        return [str(form) for form in message.string]
    return [message.string or ""]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalogue_holds_exactly_the_texts_of_the_code(code: Catalog, lang: str) -> None:
    catalogue = read(lang)
    assert sorted(_ids(code) - _ids(catalogue), key=str) == [], "missing: run `make messages`"
    assert sorted(_ids(catalogue) - _ids(code), key=str) == [], "stale: run `make messages`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_is_translated_and_reviewed(lang: str) -> None:
    catalogue = read(lang)
    untranslated = [_key(m) for m in catalogue if m.id and not translated(m.string)]
    fuzzy = [_key(m) for m in catalogue if m.id and m.fuzzy]
    assert untranslated == []
    assert fuzzy == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_and_plural_forms_match_the_english(lang: str) -> None:
    catalogue = read(lang)
    for message in catalogue:
        if not message.id or not translated(message.string):
            continue  # reported by the test above
        if isinstance(message.id, str):
            assert placeholders(_forms(message)[0]) == placeholders(message.id), message.id
            continue
        singular, plural = message.id[0], message.id[1]
        forms = _forms(message)
        assert len(forms) == catalogue.num_plurals, (lang, singular)
        wanted = placeholders(singular) | placeholders(plural)
        for form in forms:
            # a form may leave the number out ("один файл"), never another value
            assert wanted - {"n"} <= placeholders(form) <= wanted, (lang, singular, form)


def _symbols(text: str) -> list[str]:
    return sorted(c for c in text if unicodedata.category(c) == "So")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_emoji_and_markup_are_kept(lang: str) -> None:
    tag = re.compile(r"</?[a-z]+>")
    for message in read(lang):
        if not message.id or not isinstance(message.id, str):
            continue
        text = _forms(message)[0]
        assert _symbols(text) == _symbols(message.id), (lang, message.id)
        assert sorted(tag.findall(text)) == sorted(tag.findall(message.id)), message.id


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_error_renders_in_every_language(lang: str) -> None:
    t = texts(lang)
    samples: dict[str, str | int | float] = {
        "size_mb": 60.0,
        "limit_mb": 50,
        "channels": 12,
        "limit": "10:00",
        "duration": "12:30",
        "model": "htdemucs_ft",
        "reference": "ab12cd34",
    }
    for cls in errors._classes(errors.StembotError):
        if cls.code in ("limit", "not_allowed"):
            continue
        params = {k: samples[k] for k in placeholders(cls.text) if k in samples}
        if cls is errors.TooLarge:
            params = {"size_mb": 60.0, "limit_mb": 50}
        shown = errors.render(t, cls.code, params)
        assert "{" not in shown, shown
        assert shown != errors.render(texts("en"), cls.code, params), (lang, cls.code)


def test_each_error_code_names_one_text() -> None:
    classes = errors._classes(errors.StembotError)[1:]  # the base is "internal"
    codes = [cls.code for cls in classes if "code" in vars(cls)]
    assert sorted(c for c in set(codes) if codes.count(c) > 1) == []


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("pt-br", "pt_BR"),
        ("pt", "pt_BR"),
        ("pt_BR", "pt_BR"),
        ("es-419", "es"),
        ("en-GB", "en"),
        ("fr-CA", "fr"),
        ("ru", "ru"),
        ("ja", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_a_platform_language_tag_gets_our_language(tag: str | None, lang: str) -> None:
    assert negotiate(tag) == lang


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        ("ja, de;q=0.5", "de"),
        ("en;q=0.1, ru;q=0.9", "ru"),
        ("pt-BR", "pt_BR"),
        ("*", "en"),
        ("de;q=0, es;q=0.2", "es"),
        ("de;q=nan", "en"),
        ("", "en"),
        (None, "en"),
        (";;;,,,q=", "en"),
    ],
)
def test_accept_language_picks_the_best_we_speak(header: str | None, lang: str) -> None:
    assert from_accept_language(header) == lang


def test_numbers_durations_and_dates_are_written_each_language_s_way() -> None:
    en, de, ru = texts("en"), texts("de"), texts("ru")
    assert (en.wait(3700), en.eta(200), en.size(7_100_000)) == ("1 h 2 min", "3 min 20 s", "7.1 MB")
    assert de.size(7_100_000) == "7,1 MB"
    assert ru.megabytes(7 * 1024 * 1024 + 100_000) == "7,1 MB"
    assert en.moment(1_790_000_000) == "9/21/26, 2:13\u202fPM UTC"
    assert de.moment(1_790_000_000) == "21.09.26, 14:13 UTC"
    assert en.n_("{n} song", "{n} songs", 1) == "1 song"
    assert en.n_("{n} song", "{n} songs", 1234) == "1,234 songs"
