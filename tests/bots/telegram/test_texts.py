"""The bot's texts: every language has every text and every core error code."""

from __future__ import annotations

import string

import pytest

from bots.telegram import texts
from shared import errors
from shared.errors import InternalError, ModelUnavailable, StembotError, TooLarge, TooLong


def all_codes() -> set[str]:
    found, todo = set(), [StembotError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__ == errors.__name__ and cls is not StembotError:
            found.add(cls.code)
    return found


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_every_text_with_the_same_fields() -> None:
    for lang, table in texts.TEXTS.items():
        assert table.keys() == texts.EN.keys(), lang
        for key, template in table.items():
            assert fields(template) == fields(texts.EN[key]), (lang, key)


def test_every_error_code_is_translated() -> None:
    for lang in texts.TEXTS.keys() - {"en"}:
        missing = all_codes() - texts.ERRORS[lang].keys()
        assert not missing, f"{lang}: translate {sorted(missing)} in bots/telegram/texts.py"


@pytest.mark.parametrize(
    ("error", "german"),
    [
        (
            TooLong(185, 120),
            "Das Stück ist 3:05 lang; erlaubt sind 2:00. Schick einen kürzeren Ausschnitt des "
            "Songs.",
        ),
        (
            TooLarge(50 * 1024 * 1024, 60 * 1024 * 1024),
            "Die Datei ist zu groß (60.0 MB). Die Grenze liegt bei 50 MB: schick eine kürzere "
            "oder stärker komprimierte Datei.",
        ),
        (
            TooLarge(50 * 1024 * 1024),
            "Die Datei ist zu groß. Die Grenze liegt bei 50 MB: schick eine kürzere oder stärker "
            "komprimierte Datei.",
        ),
        (
            InternalError("ab12cd34"),
            "Bei uns ist etwas schiefgegangen (Referenz ab12cd34). Bitte versuch es in ein paar "
            "Minuten noch einmal.",
        ),
        (
            ModelUnavailable("htdemucs_ft"),
            "Das Modell htdemucs_ft ist auf diesem Server gerade nicht verfügbar. Nimm das "
            "Standardmodell.",
        ),
    ],
)
def test_error_values_come_from_the_event_text(error: StembotError, german: str) -> None:
    assert texts.error_text("de", error.code, error.user_message) == german
    assert texts.error_text("en", error.code, error.user_message) == error.user_message


def test_unknown_wording_code_or_language_falls_back_to_english() -> None:
    assert texts.error_text("de", "too_long", "Too long, sorry.") == "Too long, sorry."
    assert texts.error_text("de", "brand_new_code", "New text.") == "New text."
    assert texts.error_text("fr", "cancelled", "Cancelled.") == "Cancelled."
    assert texts.error_text("de", "cancelled", "x") == "Abgebrochen. Nichts wurde aufbewahrt."


@pytest.mark.parametrize(
    ("code", "lang"),
    [("de", "de"), ("de-AT", "de"), ("DE", "de"), ("en-GB", "en"), ("pt-br", "en"), (None, "en")],
)
def test_language_of_telegram_codes(code: str | None, lang: str) -> None:
    assert texts.lang_of(code) == lang


def test_durations() -> None:
    assert texts.duration("en", 59.6) == "1 min 00 s"
    assert texts.duration("de", 125) == "2 Min. 05 s"
    assert texts.duration("en", 7) == "7 s"
