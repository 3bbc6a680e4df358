"""Key and tempo estimation on synthesised songs whose key and tempo are known.

Each song is a I-IV-V-I (major) or i-iv-V-i (minor) progression, one chord a bar, played in one
of four arrangements (block chords on the half notes, off-beat stabs, eighth-note arpeggios,
sustained pads) over a bass line, with a drum kit of decaying sines and noise bursts in one of
three grooves (rock backbeat, four on the floor with off-beat open hats, syncopated kick with
sixteenth-note hats below 120 BPM). Mix and drums stem are 44.1 kHz stereo, as the worker has
them after separation. Run with ``-s`` to see the accuracy table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from worker import analysis
from worker.analysis import Analysis, Mode, TempoSource

RATE = 44100
SECONDS = 16.0
PITCH_CLASSES = {"C": 0, "C#": 1, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6}
PITCH_CLASSES |= {"G": 7, "G#": 8, "Ab": 8, "A": 9, "Bb": 10, "B": 11}


@dataclass(frozen=True)
class Song:
    tonic: str
    mode: Mode
    bpm: float
    arrangement: str  # block, offbeat, arpeggio, pad
    groove: str  # rock, four, syncopated

    @property
    def key(self) -> str:
        return f"{self.tonic} {self.mode.value}"

    def __str__(self) -> str:
        return f"{self.key} {self.bpm:g} BPM {self.arrangement}/{self.groove}"


MAJOR, MINOR = Mode.MAJOR, Mode.MINOR
SONGS = [
    Song("C", MAJOR, 70, "block", "rock"),
    Song("A", MINOR, 85, "arpeggio", "syncopated"),
    Song("F#", MAJOR, 100, "pad", "four"),
    Song("Eb", MINOR, 120, "block", "syncopated"),
    Song("G", MAJOR, 140, "arpeggio", "rock"),
    Song("E", MINOR, 170, "pad", "rock"),
    Song("Bb", MAJOR, 93.5, "offbeat", "rock"),
    Song("D", MINOR, 155, "block", "four"),
    Song("Ab", MAJOR, 78, "offbeat", "four"),
    Song("C#", MINOR, 128, "arpeggio", "four"),
    Song("B", MAJOR, 110, "pad", "syncopated"),
    Song("F", MINOR, 164, "offbeat", "syncopated"),
]


def _hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _note(
    midi: int, seconds: float, decay: float, partials: int, rng: np.random.Generator
) -> np.ndarray:
    """A plucked tone: harmonics falling as 1/k^1.3, a 5 ms attack, an exponential decay."""
    t = np.arange(int(seconds * RATE)) / RATE
    k = np.arange(1, partials + 1)[:, None]
    phases = rng.uniform(0, 2 * np.pi, (partials, 1))
    tone = (np.sin(2 * np.pi * _hz(midi) * k * t + phases) / k**1.3).sum(axis=0)
    return tone * np.exp(-t / decay) * np.minimum(1.0, t / 0.005)


def _add(track: np.ndarray, seconds: float, sound: np.ndarray) -> None:
    start = int(seconds * RATE)
    end = min(track.size, start + sound.size)
    if start < end:
        track[start:end] += sound[: end - start]


def _music(song: Song, rng: np.random.Generator) -> np.ndarray:
    track = np.zeros(int(SECONDS * RATE))
    beat = 60 / song.bpm
    third = 4 if song.mode is MAJOR else 3
    # (root, third) per bar: I IV V I, or i iv V i with the major V of harmonic minor
    bars = [(0, third), (5, third), (7, 4), (0, third)]
    tonic = PITCH_CLASSES[song.tonic]
    for eighth in range(int(SECONDS / beat * 2) + 1):
        at = eighth * beat / 2
        beat_no, offbeat = divmod(eighth, 2)
        root, chord_third = bars[(beat_no // 4) % 4]
        chord = [60 + (tonic + root + step) % 12 for step in (0, chord_third, 7)]
        bass = 36 + (tonic + root) % 12
        if song.arrangement == "block" and not offbeat and beat_no % 2 == 0:
            for note in chord:
                _add(track, at, 0.18 * _note(note, 2 * beat, 1.2 * beat, 6, rng))
        elif song.arrangement == "offbeat" and offbeat:
            for note in chord:
                _add(track, at, 0.15 * _note(note, beat / 2, 0.12 * beat, 6, rng))
        elif song.arrangement == "arpeggio":
            note = chord[(0, 1, 2, 1)[eighth % 4]] + 12 * (eighth % 8 >= 4)
            _add(track, at, 0.2 * _note(note, beat, 0.3 * beat, 6, rng))
        elif song.arrangement == "pad" and eighth % 8 == 0:
            swell = np.minimum(1.0, np.arange(int(4 * beat * RATE)) / (0.3 * RATE))
            for note in chord:
                _add(track, at, 0.15 * swell * _note(note, 4 * beat, 4 * beat, 6, rng))
        on_half_notes = song.arrangement in ("block", "offbeat") and beat_no % 2 == 0
        if not offbeat and (on_half_notes or song.arrangement in ("arpeggio", "pad")):
            length = 2 * beat if on_half_notes else beat
            _add(track, at, 0.32 * _note(bass, length, 0.6 * length, 4, rng))
    return track


def _drums(song: Song, rng: np.random.Generator) -> np.ndarray:
    """Kick (a falling sine), snare (a sine body and noise), closed and open hats (noise with
    its lows differenced away); pitches, decays and colours vary from song to song."""
    t = np.arange(int(0.3 * RATE)) / RATE
    low, sweep = rng.uniform(45, 60), rng.uniform(50, 110)
    kick = np.sin(2 * np.pi * (low * t + sweep * 0.03 * (1 - np.exp(-t / 0.03))))
    kick *= np.exp(-t / rng.uniform(0.08, 0.2))
    t = t[: int(0.25 * RATE)]
    noise = rng.standard_normal(t.size)
    if rng.random() < 0.5:  # a darker snare: the wires' noise without its top octave
        spectrum = np.fft.rfft(noise)
        spectrum[np.fft.rfftfreq(t.size, 1 / RATE) > 9000] = 0
        noise = np.fft.irfft(spectrum, t.size) * 1.4
    body = rng.uniform(0.3, 0.7) * np.sin(2 * np.pi * rng.uniform(160, 240) * t)
    snare = body * np.exp(-t / 0.05) + 0.6 * noise * np.exp(-t / rng.uniform(0.04, 0.1))
    order = int(rng.integers(2, 4))  # differenced twice or three times: brighter or brighter
    hiss = np.diff(rng.standard_normal(t.size + order), n=order) / 2 ** (order - 2)
    level = rng.uniform(0.08, 0.2)
    hat, open_hat = level * hiss * np.exp(-t / 0.015), 0.8 * level * hiss * np.exp(-t / 0.08)

    track = np.zeros(int(SECONDS * RATE))
    beat = 60 / song.bpm
    sixteenths = song.groove == "syncopated" and song.bpm < 120
    per_beat = 4 if sixteenths else 2
    kicks = {"rock": (0, 8), "four": (0, 4, 8, 12), "syncopated": (0, 6, 8)}[song.groove]
    for step in range(int(SECONDS / beat * per_beat) + 1):
        at = step * beat / per_beat
        position = step * (4 // per_beat) % 16  # in sixteenths of the bar
        if position in kicks:
            _add(track, at, 0.9 * kick)
        if position in (4, 12):
            _add(track, at, 0.7 * snare)
        if song.groove == "four":
            if position % 4 == 2:
                _add(track, at, open_hat)
        else:
            _add(track, at, hat * (1.0 if position % 4 == 0 else 0.7))
    return track


def synthesise(song: Song, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mix, drums stem), both stereo float32 at 44.1 kHz."""
    rng = np.random.default_rng(seed)
    music, drums = _music(song, rng), _drums(song, rng)
    drums_in_mix = rng.uniform(0.4, 0.9)  # drums some 1-8 dB under the music
    stereo = np.array([1.0, 0.9])[:, None]
    mix = 0.5 * (music + drums_in_mix * drums) * stereo
    return mix.astype(np.float32), (0.5 * drums_in_mix * drums * stereo).astype(np.float32)


@dataclass(frozen=True)
class Result:
    song: Song
    with_drums: Analysis  # mix and drums stem (four-stem separation)
    mix_only: Analysis  # the mix alone (two-stem separation)


@pytest.fixture(scope="module")
def results() -> list[Result]:
    found = []
    for seed, song in enumerate(SONGS):
        mix, drums = synthesise(song, seed)
        with_drums = analysis.analyse(mix, RATE, drums)
        mix_only = analysis.analyse(mix, RATE)
        found.append(Result(song, with_drums, mix_only))
    return found


def _tempo_ok(result: Analysis, bpm: float) -> bool:
    return result.tempo is not None and abs(result.tempo.bpm - bpm) <= 2.0


def _key_name(result: Analysis) -> str:
    return result.key.name if result.key else "-"


def test_accuracy_table(results: list[Result]) -> None:
    """Every song's key and tempo, from the drums stem and from the mix, all right."""

    def key(found: Analysis) -> str:
        return f"{found.key.name} {found.key.confidence:.2f}" if found.key else "-"

    def tempo(found: Analysis) -> str:
        return f"{found.tempo.bpm:.1f} {found.tempo.confidence:.2f}" if found.tempo else "-"

    lines = [
        f"{'song':<37} {'key: stems':<14} {'key: mix':<14} {'BPM: drums':>10} {'BPM: mix':>10}"
    ]
    for r in results:
        lines.append(
            f"{r.song!s:<37} {key(r.with_drums):<14} {key(r.mix_only):<14}"
            f" {tempo(r.with_drums):>10} {tempo(r.mix_only):>10}"
        )
    n = len(results)
    key_stems = sum(_key_name(r.with_drums) == r.song.key for r in results)
    key_mix = sum(_key_name(r.mix_only) == r.song.key for r in results)
    tempo_drums = sum(_tempo_ok(r.with_drums, r.song.bpm) for r in results)
    tempo_mix = sum(_tempo_ok(r.mix_only, r.song.bpm) for r in results)
    lines.append(
        f"key: {key_stems}/{n} from mix minus drums, {key_mix}/{n} from the mix; "
        f"tempo within 2 BPM: {tempo_drums}/{n} from the drums stem, {tempo_mix}/{n} from the mix"
    )
    print("\n" + "\n".join(lines))
    assert (key_stems, key_mix, tempo_drums, tempo_mix) == (n, n, n, n)


@pytest.mark.parametrize("index", range(len(SONGS)), ids=[str(s) for s in SONGS])
def test_key_and_tempo_of_each_song(results: list[Result], index: int) -> None:
    r = results[index]
    assert _key_name(r.with_drums) == r.song.key
    assert _key_name(r.mix_only) == r.song.key
    assert r.with_drums.tempo is not None and r.mix_only.tempo is not None
    assert r.with_drums.tempo.source is TempoSource.DRUMS
    assert r.mix_only.tempo.source is TempoSource.MIX
    assert r.with_drums.tempo.bpm == pytest.approx(r.song.bpm, abs=2.0)
    assert r.mix_only.tempo.bpm == pytest.approx(r.song.bpm, abs=2.0)
    assert r.with_drums.tempo.confidence >= 0.5
    # off-beat stabs leave the chords' thirds faint under the bass: less sure, still right
    assert r.with_drums.key is not None and r.with_drums.key.confidence >= 0.25


def test_a_silent_drums_stem_leaves_the_tempo_to_the_mix() -> None:
    song = Song("G", MAJOR, 140, "block", "rock")
    mix, drums = synthesise(song, seed=99)
    found = analysis.analyse(mix, RATE, np.zeros_like(drums))
    assert found.tempo is not None
    assert found.tempo.source is TempoSource.MIX
    assert found.tempo.bpm == pytest.approx(140, abs=2.0)
    assert _key_name(found) == "G major"


def test_mono_input_at_another_rate() -> None:
    song = Song("D", MINOR, 100, "arpeggio", "rock")
    mix, drums = synthesise(song, seed=7)
    # 1-D input at 22.05 kHz: every other sample, which folds only the hats' top octave down
    found = analysis.analyse(mix[0, ::2], RATE // 2, drums[0, ::2])
    assert _key_name(found) == "D minor"
    assert found.tempo is not None and found.tempo.bpm == pytest.approx(100, abs=2.0)


def test_silence_has_neither_key_nor_tempo() -> None:
    silence = np.zeros((2, RATE * 10), dtype=np.float32)
    assert analysis.analyse(silence, RATE, silence) == Analysis(key=None, tempo=None)
    short = synthesise(SONGS[0], seed=0)[0][:, : RATE * 2]
    assert analysis.analyse(short, RATE) == Analysis(key=None, tempo=None)


def test_noise_has_no_beat_and_hardly_a_key() -> None:
    noise = np.random.default_rng(5).standard_normal((2, RATE * 15)).astype(np.float32) * 0.1
    found = analysis.analyse(noise, RATE)
    assert found.tempo is None
    assert found.key is not None and found.key.confidence < 0.2
