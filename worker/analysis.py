"""Key and tempo of a song, estimated once at separation time from the mix and the drums stem.

librosa (ISC licence) does the signal processing: resampling, the spectrograms, onset strength,
chroma. What is ours is the choice among its candidates:

- **Key**: the time-averaged chroma of the pitched part (the mix minus the drums stem when there
  is one) correlated with the 24 rotations of Temperley's (1999) key profiles; the confidence
  grows with the margin between the best and the second-best key (and with the best's fit).
- **Tempo**: an onset envelope taken only from the bands where drums live (below 250 Hz: kick,
  bass; above 3 kHz: snare, hats) with loudness-like compression (power ** 1/3), so chords and
  melody in the middle do not pull the beat to their own rhythm. Its periodicity by
  autocorrelation favours slower multiples of the beat (the bar), its spectrum favours faster ones
  (the eighth notes); their product peaks at the beat (Peeters' combination), which keeps the
  tempo in the right octave within 60-190 BPM. A comb over many multiples of the period then
  refines it to a tenth of a BPM.

The drums stem gives the tempo when it has one: on synthesised songs it stays right however
quiet the drums are in the mix, while the mix starts to fail once its drums are 12 dB under the
music. A silent or absent drums stem (two-stem mode) falls back to the mix. Everything runs at
11025 Hz mono, as both analyses need nothing above 5.5 kHz: a 10-minute song takes about 2 s of
CPU (the first in a process some 3 s more, while librosa loads its modules).

What it finds (:class:`shared.music.Analysis`) goes into the job result as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import librosa
import numpy as np

from shared.music import Analysis as Analysis
from shared.music import Key as Key
from shared.music import Mode as Mode
from shared.music import Tempo as Tempo
from shared.music import TempoSource as TempoSource

#: Both analyses run at this rate, mono.
RATE = 11025
#: Onset envelope: frames of 128 samples, about 86 a second.
HOP = 128
FPS = RATE / HOP
MIN_BPM = 60.0
MAX_BPM = 190.0
#: Shorter audio has too few beats (or chords) to say anything.
MIN_SECONDS = 4.0
#: A drums stem this far below the mix (RMS) is bleed, not drums: the mix gives the tempo.
DRUMS_SILENT_DB = -40.0
#: Below this RMS (about -70 dBFS) the audio is silence.
SILENCE_RMS = 3e-4
#: Beat clarity (autocorrelation at the beat period) below which there is no beat to report.
MIN_CLARITY = 0.1
#: A key whose best correlation leads the second best by this much gets full confidence.
KEY_MARGIN_FULL = 0.2

# Temperley's (1999) major and minor key profiles, tonic first.
_MAJOR_PROFILE = np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0])
_MINOR_PROFILE = np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])
# Tonic spellings as key signatures usually have them (Db major but C# minor).
_MAJOR_TONICS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")

# Onset envelope bands: kick and bass below, snare and hats above; chords and voice between.
_LOW_BAND_HZ = 250.0
_HIGH_BAND_HZ = 3000.0
_N_MELS = 64
_BPM_GRID = np.arange(MIN_BPM / 2, MAX_BPM * 2, 0.1)


def analyse(mix: np.ndarray, sample_rate: int, drums: np.ndarray | None = None) -> Analysis:
    """Key and tempo of a song from its mix and, when there is one, its drums stem.

    Arrays are (channels, samples) or (samples,) at ``sample_rate``. CPU-bound for seconds:
    run it off the event loop.
    """
    mix_mono = to_mono(mix, sample_rate)
    drums_mono = to_mono(drums, sample_rate) if drums is not None else None
    pitched = mix_mono
    if drums_mono is not None:  # the stems sum to the mix: what is not drums is pitched
        length = min(mix_mono.size, drums_mono.size)
        pitched = mix_mono[:length] - drums_mono[:length]
    tempo = None
    if drums_mono is not None and _has_drums(drums_mono, mix_mono):
        tempo = _tempo(drums_mono, TempoSource.DRUMS)
    if tempo is None:
        tempo = _tempo(mix_mono, TempoSource.MIX)
    return Analysis(key=estimate_key(pitched), tempo=tempo)


def to_mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at :data:`RATE` (channels averaged, then resampled)."""
    channels = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if sample_rate == RATE or channels.shape[1] == 0:
        return np.ascontiguousarray(channels.mean(axis=0), dtype=np.float32)
    # channel by channel: a mono copy at the input's rate would be as big as a channel
    mono = np.zeros(0, dtype=np.float32)
    for channel in channels:
        part = librosa.resample(np.ascontiguousarray(channel), orig_sr=sample_rate, target_sr=RATE)
        mono = part if mono.size == 0 else np.add(mono, part, out=mono)
    return np.asarray(mono / len(channels), dtype=np.float32)


def estimate_key(mono: np.ndarray) -> Key | None:
    """The best of the 24 major and minor keys for mono audio at :data:`RATE`."""
    if mono.size < MIN_SECONDS * RATE or _rms(mono) < SILENCE_RMS:
        return None
    n_fft = 8192  # 1.3 Hz bins: semitones apart down to the bass
    spectra = _by_chunks(
        mono,
        n_fft,
        n_fft // 4,
        lambda chunk: np.abs(librosa.stft(chunk, n_fft=n_fft, hop_length=n_fft // 4, center=False)),
    )
    # tuning from about 500 frames spread over the song: all of them would take seconds
    frames = sum(part.shape[1] for part in spectra)
    sample = np.concatenate([part[:, :: max(1, frames // 500)] for part in spectra], axis=1)
    tuning = float(librosa.estimate_tuning(S=sample, sr=RATE, n_fft=n_fft))
    chroma = np.concatenate(
        [
            librosa.feature.chroma_stft(S=part**2, sr=RATE, n_fft=n_fft, tuning=tuning)
            for part in spectra
        ],
        axis=1,
    )
    profile = chroma.mean(axis=1)
    if not np.any(profile > 0) or np.ptp(profile) == 0:
        return None
    scores = _key_correlations(profile)
    best, second = np.sort(scores)[::-1][:2]
    index = int(np.argmax(scores))
    mode = Mode.MAJOR if index < 12 else Mode.MINOR
    tonic = (_MAJOR_TONICS if mode is Mode.MAJOR else _MINOR_TONICS)[index % 12]
    confidence = np.clip((best - second) / KEY_MARGIN_FULL, 0.0, 1.0) * max(best, 0.0)
    return Key(tonic=tonic, mode=mode, confidence=round(float(confidence), 2))


def estimate_tempo(mono: np.ndarray) -> tuple[float, float] | None:
    """(BPM to 0.1, beat clarity 0..1) of mono audio at :data:`RATE`, None without a beat."""
    if mono.size < MIN_SECONDS * RATE or _rms(mono) < SILENCE_RMS:
        return None
    peaks = _peaks(_drum_band_onsets(mono))
    acf = _autocorrelation(peaks)
    if acf is None:
        return None
    lags = np.arange(acf.size)
    periodicity = np.maximum(np.interp(60 * FPS / _BPM_GRID, lags, acf), 0.0)
    spectrum = _spectrum(peaks)
    score = periodicity * spectrum
    in_range = (_BPM_GRID >= MIN_BPM) & (_BPM_GRID <= MAX_BPM)
    if not np.any(score[in_range] > 0):
        return None
    coarse = float(_BPM_GRID[in_range][np.argmax(score[in_range])])
    bpm = _refine(acf, coarse)
    clarity = float(np.clip(np.interp(60 * FPS / bpm, lags, acf), 0.0, 1.0))
    if clarity < MIN_CLARITY:
        return None
    return round(bpm, 1), round(clarity, 2)


def _tempo(mono: np.ndarray, source: TempoSource) -> Tempo | None:
    found = estimate_tempo(mono)
    if found is None:
        return None
    return Tempo(bpm=found[0], confidence=found[1], source=source)


def _has_drums(drums: np.ndarray, mix: np.ndarray) -> bool:
    level = _rms(drums)
    return level >= SILENCE_RMS and level >= _rms(mix) * 10 ** (DRUMS_SILENT_DB / 20)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def _key_correlations(profile: np.ndarray) -> np.ndarray:
    """Pearson correlation of a 12-bin chroma profile with the 12 major then 12 minor keys."""
    rotations = [np.roll(p, tonic) for p in (_MAJOR_PROFILE, _MINOR_PROFILE) for tonic in range(12)]
    keys = np.array(rotations)
    keys = (keys - keys.mean(axis=1, keepdims=True)) / keys.std(axis=1, keepdims=True)
    z = (profile - profile.mean()) / profile.std()
    return np.asarray(keys @ z / 12.0)


def _drum_band_onsets(mono: np.ndarray) -> np.ndarray:
    centres = librosa.mel_frequencies(n_mels=_N_MELS + 2, fmin=30.0, fmax=RATE / 2)[1:-1]
    bands = (centres < _LOW_BAND_HZ) | (centres >= _HIGH_BAND_HZ)

    def mel(chunk: np.ndarray) -> np.ndarray:
        power = librosa.feature.melspectrogram(
            y=chunk, sr=RATE, n_fft=1024, hop_length=HOP, center=False, n_mels=_N_MELS, fmin=30.0
        )
        return np.asarray(power[bands])

    compressed = np.concatenate(_by_chunks(mono, 1024, HOP, mel), axis=1) ** (1 / 3)
    return np.asarray(librosa.onset.onset_strength(S=compressed, sr=RATE, hop_length=HOP))


def _by_chunks(
    mono: np.ndarray, n_fft: int, hop: int, frames: Callable[[np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """``frames`` of the centred STFT frames, a minute of audio at a time, in order: a
    10-minute song's whole complex STFT would hold hundreds of MB at once."""
    padded = np.pad(mono, n_fft // 2)
    total = 1 + (padded.size - n_fft) // hop
    step = max(1, (RATE * 60) // hop)
    parts = []
    for first in range(0, total, step):
        count = min(step, total - first)
        parts.append(frames(padded[first * hop : (first + count - 1) * hop + n_fft]))
    return parts


def _peaks(envelope: np.ndarray) -> np.ndarray:
    """The envelope's rises above its one-second local mean: onsets, not loudness."""
    window = int(FPS)
    local_mean = np.convolve(envelope, np.ones(window) / window, mode="same")
    return np.asarray(np.maximum(envelope - local_mean, 0.0))


def _autocorrelation(peaks: np.ndarray) -> np.ndarray | None:
    """Autocorrelation of the peaks, each lag divided by its overlap, lag 0 scaled to 1."""
    centred = peaks - peaks.mean()
    max_lag = min(centred.size // 2, int(FPS * 12))
    acf = librosa.autocorrelate(centred, max_size=max_lag)
    acf = acf / (centred.size - np.arange(acf.size))
    if acf[0] <= 1e-12:
        return None
    return np.asarray(acf / acf[0])


def _spectrum(peaks: np.ndarray) -> np.ndarray:
    """Magnitude spectrum of the peaks (Welch, 12 s windows) on the BPM grid, top 1."""
    window = peaks.size if peaks.size < FPS * 12 else int(FPS * 12)
    n_fft = 16384  # 0.3 BPM bins
    frames = librosa.util.frame(
        peaks,
        frame_length=window,
        hop_length=max(1, window // 2),
    )
    frames = (frames - frames.mean(axis=0)) * np.hanning(window)[:, None]
    power = np.mean(np.abs(np.fft.rfft(frames, n=n_fft, axis=0)) ** 2, axis=1)
    freqs = np.fft.rfftfreq(n_fft, d=1 / FPS)
    magnitude = np.interp(_BPM_GRID / 60, freqs, np.sqrt(power))
    top = magnitude.max()
    return magnitude / top if top > 0 else magnitude


def _refine(acf: np.ndarray, bpm: float) -> float:
    """The tempo within 1.5% of ``bpm`` whose beat period, and up to 12 multiples of it, lines
    up best with the autocorrelation peaks (1.5% off moves the 12th by less than a sixteenth)."""
    candidates = np.arange(bpm * 0.985, bpm * 1.015, 0.02)
    periods = 60 * FPS / candidates
    multiples = np.arange(1, min(13, max(2, int(acf.size / periods.max()))))
    lags = periods[:, None] * multiples[None, :]
    comb = np.interp(lags, np.arange(acf.size), acf).sum(axis=1)
    return float(candidates[np.argmax(comb)])
