"""Decoding with ffmpeg and encoding stems the way the demucs CLI writes them.

Blocking functions: the worker calls them in its executor thread.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from demucs.audio import convert_audio_channels, save_audio

from shared.errors import NoDuration, Unreadable
from shared.schemas import AudioFormat


def decode(
    path: Path, samplerate: int, channels: int, *, src_channels: int, timeout_s: float = 300
) -> torch.Tensor:
    """Decode the first audio stream to float32 ``[channels, samples]`` at ``samplerate``.

    ffmpeg resamples; channels are then adapted with demucs' own rule (mono is duplicated,
    extra channels are dropped), as the demucs CLI does after reading a file.
    """
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-vn",
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-ar",
        str(samplerate),
        "pipe:1",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise Unreadable(detail=f"ffmpeg decode timed out after {timeout_s}s") from exc
    if proc.returncode != 0:
        raise Unreadable(detail=proc.stderr.decode(errors="replace")[-500:])
    frame = 4 * src_channels
    usable = len(proc.stdout) - len(proc.stdout) % frame
    if usable == 0:
        raise NoDuration()
    samples = np.frombuffer(proc.stdout, dtype="<f4", count=usable // 4)
    wav = torch.from_numpy(samples.reshape(-1, src_channels).T.copy())
    del proc
    return convert_audio_channels(wav, channels).contiguous()


def encode(wav: torch.Tensor, path: Path, fmt: AudioFormat, samplerate: int) -> Path:
    """mp3 320 kbps (LAME preset 2), flac or wav 16-bit; clipping avoided by rescaling."""
    target = path.with_suffix(f".{fmt.value}")
    save_audio(
        wav,
        target,
        samplerate=samplerate,
        bitrate=320,
        clip="rescale",
        bits_per_sample=16,
        preset=2,
    )
    return target


def encode_stems(
    stems: dict[str, torch.Tensor],
    out_dir: Path,
    fmt: AudioFormat,
    samplerate: int,
    *,
    workers: int | None = None,
) -> dict[str, Path]:
    """Encode every stem to ``out_dir/<name>.<ext>``, in parallel, keeping the order."""
    workers = workers or min(len(stems), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            name: pool.submit(encode, wav, out_dir / name, fmt, samplerate)
            for name, wav in stems.items()
        }
        return {name: f.result() for name, f in futures.items()}


def make_zip(files: dict[str, Path], dest: Path) -> Path:
    """Zip ``arcname -> file`` without recompressing (mp3/flac are compressed already)."""
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for arcname, path in files.items():
            zf.write(path, arcname)
    tmp.replace(dest)
    return dest
