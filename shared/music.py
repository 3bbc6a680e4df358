"""A song's key and tempo: what the worker's analysis found (worker.analysis), as the job
result carries it, and how every frontend writes it for people.

One rule for how sure is sure enough, for every place that shows it: a key or tempo whose
confidence is under :data:`SURE` is shown with a question mark ("A minor?", "¿La menor?" is the
translators' call), and a key under :data:`KEY_SHOWN` is not shown at all (noise and speech
land there; on the synthesised test songs every right key scores 0.27 or more).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from shared.i18n import Texts

#: Confidence from which a key or tempo is shown without a question mark.
SURE = 0.5
#: Confidence under which a key is not shown at all.
KEY_SHOWN = 0.2


class Mode(StrEnum):
    MAJOR = "major"
    MINOR = "minor"


class TempoSource(StrEnum):
    DRUMS = "drums"
    MIX = "mix"


class Key(BaseModel):
    """A key such as "F# minor", with how sure the estimate is (0..1)."""

    model_config = ConfigDict(frozen=True)

    tonic: str
    mode: Mode
    confidence: float

    @property
    def name(self) -> str:
        return f"{self.tonic} {self.mode.value}"


class Tempo(BaseModel):
    """Beats per minute (to 0.1), how clear the beat is (0..1) and what it was measured on."""

    model_config = ConfigDict(frozen=True)

    bpm: float
    confidence: float
    source: TempoSource


class Analysis(BaseModel):
    """What the song analysis found; None where the audio has no key or no beat to find."""

    model_config = ConfigDict(frozen=True)

    key: Key | None
    tempo: Tempo | None


def tonic_label(tonic: str) -> str:
    """A note name as musicians read it: F♯, B♭ (the letter stays in every language)."""
    return tonic[:1] + tonic[1:].replace("#", "♯").replace("b", "♭")


def _hedged(t: Texts, label: str, confidence: float) -> str:
    if confidence >= SURE:
        return label
    # TRANSLATORS: a key or tempo the analysis is not sure of, as in "A minor?" or "120 BPM?"
    return t._("{guess}?", guess=label)


def key_label(t: Texts, key: Key | None) -> str | None:
    """The key as people read it, in ``t``'s language: "A minor", "F♯ major"; hedged, or None,
    when unsure (see above)."""
    if key is None or key.confidence < KEY_SHOWN:
        return None
    tonic = tonic_label(key.tonic)
    if key.mode is Mode.MAJOR:
        # TRANSLATORS: a musical key; {tonic} is a note name (C, F♯, B♭) that stays as it is
        label = t.p_("key", "{tonic} major", tonic=tonic)
    else:
        # TRANSLATORS: a musical key; {tonic} is a note name (C, F♯, B♭) that stays as it is
        label = t.p_("key", "{tonic} minor", tonic=tonic)
    return _hedged(t, label, key.confidence)


def tempo_label(t: Texts, tempo: Tempo | None) -> str | None:
    """The tempo as people read it: "120 BPM", "93.5 BPM" (the number in ``t``'s language);
    hedged when unsure."""
    if tempo is None:
        return None
    return _hedged(t, f"{t.number(tempo.bpm, 1)} BPM", tempo.confidence)


def music_line(t: Texts, analysis: Analysis | None) -> str | None:
    """Key and tempo on one line: "A minor · 120 BPM", or what there is of it; None when there
    is nothing to show."""
    if analysis is None:
        return None
    labels = [key_label(t, analysis.key), tempo_label(t, analysis.tempo)]
    return " · ".join(label for label in labels if label) or None
