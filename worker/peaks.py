"""Waveform peaks of a stem: ffmpeg decodes to mono 8 kHz, the loudest sample per bucket.

Light on purpose (numpy and ffmpeg only, no torch): the web server computes peaks lazily the
first time a results page asks for them, and a worker may precompute them after encoding.
The cache file ``<stem file>.peaks.json`` lives next to the stem in the job folder, so it
expires (and is replaced on a new publish) together with the stem.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from shared.media import input_args

#: Buckets per waveform: enough for a wide screen, small as JSON (about 4 KB).
BUCKETS = 800
RATE = 8000
PEAKS_SUFFIX = ".peaks.json"
FFMPEG_TIMEOUT_S = 120.0


class PeaksError(RuntimeError):
    """ffmpeg could not decode the stem."""


def peaks_path(stem: Path) -> Path:
    return stem.with_name(stem.name + PEAKS_SUFFIX)


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


def _source_id(stem: Path) -> dict[str, int]:
    st = stem.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_cached(stem: Path) -> list[float] | None:
    """The cached peaks of ``stem`` when they were computed from this very file."""
    try:
        data: Any = json.loads(peaks_path(stem).read_text())
        if data.get("source") != _source_id(stem):
            return None
        peaks = data["peaks"]
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None
    return peaks if isinstance(peaks, list) else None


def write_cache(stem: Path, peaks: list[float]) -> None:
    """Atomically (a temp name then a rename) next to the stem."""
    target = peaks_path(stem)
    part = target.with_name(f".{target.name}.part-{secrets.token_hex(4)}")
    try:
        part.write_text(json.dumps({"source": _source_id(stem), "peaks": peaks}))
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


async def compute_peaks(stem: Path, buckets: int = BUCKETS) -> list[float]:
    samples = await decode_mono(stem)
    return await asyncio.to_thread(bucket_peaks, samples, buckets)


async def cached_peaks(stem: Path) -> list[float]:
    """Peaks from the cache file, else computed once and cached."""
    found = await asyncio.to_thread(read_cached, stem)
    if found is not None:
        return found
    peaks = await compute_peaks(stem)
    await asyncio.to_thread(write_cache, stem, peaks)
    return peaks
