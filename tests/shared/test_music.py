"""How a song's key and tempo are written for people, in every language, and how sure is sure
enough: a question mark under 0.5, no key at all under 0.2."""

from __future__ import annotations

import pytest

from shared.i18n import texts
from shared.music import Analysis, Key, Mode, Tempo, TempoSource, key_label, music_line
from shared.schemas import JobResult

A_MINOR = Key(tonic="A", mode=Mode.MINOR, confidence=0.84)
TEMPO = Tempo(bpm=93.5, confidence=0.8, source=TempoSource.DRUMS)


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        ("en", "A minor · 93.5 BPM"),
        ("de", "A-Moll · 93,5 BPM"),
        ("es", "A menor · 93,5 BPM"),
        ("fr", "A mineur · 93,5 BPM"),
        ("pt_BR", "A menor · 93,5 BPM"),
        ("ru", "A минор · 93,5 BPM"),
    ],
)
def test_key_and_tempo_in_each_language(lang: str, line: str) -> None:
    assert music_line(texts(lang), Analysis(key=A_MINOR, tempo=TEMPO)) == line


@pytest.mark.parametrize(
    ("lang", "label"),
    [
        ("en", "F♯ major"),
        ("de", "F♯-Dur"),
        ("es", "F♯ mayor"),
        ("fr", "F♯ majeur"),
        ("pt_BR", "F♯ maior"),
        ("ru", "F♯ мажор"),
    ],
)
def test_sharps_and_flats_are_written_as_musicians_read_them(lang: str, label: str) -> None:
    assert key_label(texts(lang), Key(tonic="F#", mode=Mode.MAJOR, confidence=0.9)) == label
    b_flat = key_label(texts(lang), Key(tonic="Bb", mode=Mode.MAJOR, confidence=0.9))
    assert b_flat == label.replace("F♯", "B♭")


@pytest.mark.parametrize(
    ("lang", "line"),
    [
        ("en", "A minor? · 120 BPM?"),
        ("es", "¿A menor? · ¿120 BPM?"),
        ("fr", "A mineur\u00a0? · 120 BPM\u00a0?"),
        ("de", "A-Moll? · 120 BPM?"),
    ],
)
def test_an_unsure_estimate_gets_a_question_mark(lang: str, line: str) -> None:
    unsure = Analysis(
        key=A_MINOR.model_copy(update={"confidence": 0.31}),
        tempo=Tempo(bpm=120.0, confidence=0.49, source=TempoSource.MIX),
    )
    assert music_line(texts(lang), unsure) == line


def test_a_key_too_unsure_to_show_is_left_out() -> None:
    en = texts("en")
    noise = Analysis(key=A_MINOR.model_copy(update={"confidence": 0.19}), tempo=None)
    assert music_line(en, noise) is None
    both = Analysis(key=A_MINOR.model_copy(update={"confidence": 0.19}), tempo=TEMPO)
    assert music_line(en, both) == "93.5 BPM"
    assert music_line(en, Analysis(key=A_MINOR.model_copy(update={"confidence": 0.2}), tempo=None))
    assert music_line(en, Analysis(key=None, tempo=None)) is None
    assert music_line(en, None) is None


def test_results_from_before_the_analysis_still_load() -> None:
    old = {
        "key": "abc",
        "title": "t",
        "model": "htdemucs",
        "stems_mode": "all",
        "format": "mp3",
        "duration_s": 1.0,
        "stems": [],
        "zip": {"name": "all", "filename": "stems.zip", "size_bytes": 1, "url": "u"},
        "created_at": 1.0,
        "expires_at": 2.0,
    }
    assert JobResult.model_validate(old).analysis is None
    new = JobResult.model_validate(old | {"analysis": {"key": A_MINOR.model_dump(), "tempo": None}})
    assert new.analysis == Analysis(key=A_MINOR, tempo=None)
    assert JobResult.model_validate_json(new.model_dump_json()) == new
