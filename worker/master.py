"""A separation's lossless master (shared.masters): every stem of the model as 24-bit FLAC.

Why 24-bit FLAC: the stems are float32, and every file we deliver (mp3, flac, wav) is made
from 16-bit samples. 24 bits keep 256 steps for each step of those files, so a render makes
the same samples as the separation did (a sample on the edge of a 16-bit step may come out
one step off); FLAC stores that in about a third of the float size or less, any ffmpeg
decodes it at hundreds of times real time, and every frame carries a checksum, so a damaged
master is found instead of delivered. WavPack, the one float-lossless codec ffmpeg writes,
made files 2 to 5 times larger on the same stems, for exactness nothing delivered can show.

Demucs' stems may go past full scale (the encoder's clip-avoiding rescale takes care of that
when delivering): each stem is divided by its gain (1, or its peak when louder) before it is
quantised, and the gain is written in the file's own tags (``STEMBOT_GAIN``), so a file
reads back alone: the float stem within half a 24-bit step of its gain.

Blocking functions run in the worker's executor thread, except :func:`keep` and
:func:`fetch` (storage I/O).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from redis.asyncio import Redis

from shared import masters
from shared.errors import SourceGone
from shared.masters import Master
from shared.media import input_args
from shared.schemas import JobResult
from shared.storage import Storage
from worker.staging import BLOCK, StagedStem

log = logging.getLogger(__name__)
T = TypeVar("T")

GAIN_TAG = "STEMBOT_GAIN"
#: The largest 24-bit sample; ffmpeg hands FLAC 24-bit samples over as s32 (sample << 8).
FULL = 2**23 - 1
SHIFT = 8
FFMPEG_TIMEOUT_S = 300.0


class MasterGone(Exception):
    """The master is missing, incomplete or damaged: the run separates after all."""


# --- writing (the separation) -----------------------------------------------------------


def write(stems: Mapping[str, StagedStem], folder: Path, samplerate: int) -> dict[str, Path]:
    """Every stem to ``folder/<name>.flac``, in parallel; the paths by stem name."""
    folder.mkdir(parents=True, exist_ok=True)
    return _each(
        {name: (stem, folder / f"{name}.flac") for name, stem in stems.items()},
        lambda job: _encode(job[0], job[1], samplerate),
    )


def _encode(stem: StagedStem, target: Path, samplerate: int) -> Path:
    gain = max(1.0, float(stem.peak))
    scale = np.float32(FULL / gain)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "s32le", "-ar", str(samplerate)]
    cmd += ["-ac", str(stem.channels), "-i", "-", "-c:a", "flac", "-sample_fmt", "s32"]
    cmd += ["-metadata", f"{GAIN_TAG}={gain!r}", str(target)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for block in stem.frames():
                ints = np.rint(block.numpy() * scale).clip(-FULL, FULL).astype("<i4")
                proc.stdin.write((ints << SHIFT).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {target.name}: {err.decode(errors='replace')}")
    return target


async def keep(
    redis: Redis,
    storage: Storage,
    separation_key: str,
    files: Mapping[str, Path],
    result: JobResult,
    *,
    samplerate: int,
    channels: int,
    frames: int,
) -> Master:
    """Publish the master files under the separation key, expiring with ``result``'s links,
    and record it (shared.masters)."""
    master = Master(
        separation_key=separation_key,
        files={name: path.name for name, path in files.items()},
        samplerate=samplerate,
        channels=channels,
        frames=frames,
        expires_at=result.expires_at,
        result=result,
    )
    await storage.publish_job(
        master.storage_key, list(files.items()), title=result.title, expires_at=result.expires_at
    )
    await masters.record(redis, master)
    return master


# --- reading (a render) -----------------------------------------------------------------


async def fetch(storage: Storage, master: Master, folder: Path) -> dict[str, Path]:
    """Local copies of the master's files; MasterGone when one is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, filename in master.files.items():
        try:
            found[name] = await storage.fetch_job_file(
                master.storage_key, filename, folder / filename
            )
        except SourceGone:
            raise MasterGone(f"{filename} is gone") from None
    return found


def read(files: Mapping[str, Path], folder: Path, master: Master) -> dict[str, StagedStem]:
    """Decode the master's files into staged stems (``folder/<name>.f32``, as a separation
    leaves them), in parallel; MasterGone for a damaged, short or foreign file."""
    folder.mkdir(parents=True, exist_ok=True)
    return _each(
        {name: (path, folder / f"{name}.f32") for name, path in files.items()},
        lambda job: _decode(job[0], job[1], master),
    )


def _decode(path: Path, target: Path, master: Master) -> StagedStem:
    gain = _gain(path)
    step = np.float32(gain / FULL)
    stem = StagedStem(target, master.channels)
    frame_bytes = 4 * master.channels
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-xerror"]
    cmd += ["-err_detect", "crccheck+bitstream+buffer+explode", *input_args(path, "flac")]
    cmd += ["-ac", str(master.channels), "-ar", str(master.samplerate), "-f", "s32le", "-"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        rest = b""
        while chunk := proc.stdout.read(BLOCK * frame_bytes):
            data = rest + chunk
            usable = len(data) - len(data) % frame_bytes
            rest = data[usable:]
            ints = np.frombuffer(data[:usable], dtype="<i4") >> SHIFT
            block = (ints.astype(np.float32) * step).reshape(-1, master.channels)
            stem.append(torch.from_numpy(block).t())
        err = proc.stderr.read()
        proc.wait(timeout=FFMPEG_TIMEOUT_S)
    if proc.returncode != 0:
        raise MasterGone(f"{path.name}: {err.decode(errors='replace')[-300:]}")
    if rest or stem.length != master.frames:
        raise MasterGone(f"{path.name}: {stem.length} samples, not {master.frames}")
    return stem


def _gain(path: Path) -> float:
    """The gain a master file was written with (its tag)."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", f"format_tags={GAIN_TAG}", "-of", "json"]
    proc = subprocess.run(
        [*cmd, *input_args(path, "flac")], capture_output=True, timeout=60, check=False
    )
    try:
        gain = float(json.loads(proc.stdout)["format"]["tags"][GAIN_TAG])
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterGone(f"{path.name}: no readable {GAIN_TAG} tag") from exc
    if not math.isfinite(gain) or gain < 1.0:
        raise MasterGone(f"{path.name}: gain {gain}")
    return gain


J = TypeVar("J")


def _each(jobs: Mapping[str, J], work: Callable[[J], T]) -> dict[str, T]:
    """``work`` on every job at once (ffmpeg does the work), the results in the same order."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(work, job) for name, job in jobs.items()}
        return {name: f.result() for name, f in futures.items()}
