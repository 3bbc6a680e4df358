"""Synthesised songs whose key and tempo are known, for the analysis and the worker's tests.

Each song is a I-IV-V-I (major) or i-iv-V-i (minor) progression, one chord a bar, played in one
of four arrangements (block chords on the half notes, off-beat stabs, eighth-note arpeggios,
sustained pads) over a bass line, with a drum kit of decaying sines and noise bursts in one of
three grooves (rock backbeat, four on the floor with off-beat open hats, syncopated kick with
sixteenth-note hats below 120 BPM). Mix and drums stem are 44.1 kHz stereo, as the worker has
them after separation.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.music import Mode

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


def write_song(path: Path, song: Song, seed: int = 0) -> Path:
    """The song's mix as a 16-bit stereo WAV file at 44.1 kHz (what a user would upload)."""
    mix, _ = synthesise(song, seed)
    frames = (np.clip(mix.T, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(mix.shape[0])
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames.tobytes())
    return path
