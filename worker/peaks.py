"""Waveform peaks of a stem: ffmpeg decodes to mono 8 kHz, the loudest sample per bucket.

The worker computes them right after encoding (worker.pipeline) and publishes them with the
stems (``<stem file>.peaks.json`` next to each stem, through shared.storage), so they expire
and are replaced together with the stem; the results page only reads them. Light on purpose
(numpy and ffmpeg only, no torch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shared.media import input_args

log = logging.getLogger(__name__)

#: Buckets per waveform: enough for a wide screen, small as JSON (about 4 KB).
BUCKETS = 800
RATE = 8000
FFMPEG_TIMEOUT_S = 120.0


class PeaksError(RuntimeError):
    """ffmpeg could not decode the stem."""


def bucket_peaks(samples: np.ndarray, buckets: int = BUCKETS) -> list[float]:
    """Max |sample| per bucket, scaled so the loudest bucket is 1.0 (all 0.0 for silence)."""
    if samples.size == 0:
        return [0.0] * buckets
    mags = np.abs(samples.astype(np.int32))
    edges = np.linspace(0, mags.size, buckets + 1).astype(np.int64)
    # an empty bucket (fewer samples than buckets) repeats its neighbour's value
    starts = np.minimum(edges[:-1], mags.size - 1)
    peaks = np.maximum.reduceat(mags, starts).astype(np.float64)
    top = float(peaks.max())
    if top <= 0:
        return [0.0] * buckets
    return [round(float(p), 3) for p in np.clip(peaks / top, 0.0, 1.0)]


#: The formats the worker writes stems in, each read back with its own demuxer only.
_OUR_DEMUXERS = {".mp3": "mp3", ".flac": "flac", ".wav": "wav"}


async def decode_mono(path: Path, rate: int = RATE) -> np.ndarray:
    """The whole file as mono s16 samples at ``rate`` (ffmpeg in a subprocess)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        *input_args(path, _OUR_DEMUXERS.get(path.suffix)),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-f",
        "s16le",
        "-",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(FFMPEG_TIMEOUT_S):
            out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise PeaksError(f"ffmpeg failed on {path.name}: {err.decode(errors='replace')[-300:]}")
    return np.frombuffer(out[: len(out) // 2 * 2], dtype="<i2")


async def compute_peaks(stem: Path, buckets: int = BUCKETS) -> list[float]:
    samples = await decode_mono(stem)
    return await asyncio.to_thread(bucket_peaks, samples, buckets)


async def peaks_by_file(stems: Iterable[Path]) -> dict[str, list[float]]:
    """The peaks of each stem file, by its name; a file ffmpeg cannot read is left out (and
    logged): its page shows the player without a waveform, the job goes on."""
    paths = list(stems)
    found = await asyncio.gather(*(compute_peaks(p) for p in paths), return_exceptions=True)
    peaks: dict[str, list[float]] = {}
    for path, result in zip(paths, found, strict=True):
        if isinstance(result, Exception):
            log.warning("no waveform peaks for %s: %s", path.name, result)
        elif isinstance(result, BaseException):
            raise result
        else:
            peaks[path.name] = result
    return peaks
