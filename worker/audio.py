"""Decoding with ffmpeg and encoding stems the way the demucs CLI writes them.

Blocking functions: the worker calls them in its executor thread.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lameenc
import numpy as np
import torch
from demucs.audio import convert_audio_channels

from shared.errors import NoDuration, Unreadable
from shared.media import input_args
from shared.schemas import AudioFormat
from worker.staging import BLOCK, StagedStem


def decode(
    path: Path,
    samplerate: int,
    channels: int,
    *,
    src_channels: int,
    demuxer: str,
    timeout_s: float = 300,
) -> torch.Tensor:
    """Decode the first audio stream to float32 ``[channels, samples]`` at ``samplerate``.

    ``demuxer`` is the one ``shared.media.probe`` found: the decode is pinned to it and may
    open nothing but the file. ffmpeg resamples; channels are then adapted with demucs' own
    rule (mono is duplicated, extra channels are dropped), as the demucs CLI does after
    reading a file.
    """
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        *input_args(path, demuxer),
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


def encode(wav: torch.Tensor | StagedStem, path: Path, fmt: AudioFormat, samplerate: int) -> Path:
    """mp3 320 kbps (LAME preset 2), flac or wav 16-bit; clipping avoided by rescaling.

    Byte for byte what ``demucs.audio.save_audio(wav, ..., clip="rescale")`` writes (the demucs
    CLI's output), but block by block: demucs holds three float copies and an int16 copy of the
    stem at once, this holds one block of each.
    """
    target = path.with_suffix(f".{fmt.value}")
    if isinstance(wav, StagedStem):
        channels, length, peak = wav.channels, wav.length, wav.peak
        frames: Iterator[torch.Tensor] = wav.frames()
    else:
        channels, length, peak = wav.shape[0], wav.shape[-1], wav.abs().max()
        frames = (wav[:, i : i + BLOCK].t() for i in range(0, length, BLOCK))
    loud = 1.01 * peak  # demucs.audio.prevent_clip(mode="rescale"): wav / max(loud, 1)
    scale: torch.Tensor | int = 1 if bool(loud < 1) else loud
    rescaled = (block / scale for block in frames)
    if fmt == AudioFormat.MP3:
        _write_mp3(rescaled, target, samplerate, channels)
    elif fmt == AudioFormat.WAV:
        _write_wav(rescaled, target, samplerate, channels, length)
    else:
        _write_ffmpeg(rescaled, target, samplerate, channels)
    return target


def _i16_bytes(block: torch.Tensor) -> bytes:
    """demucs.audio._pcm_bytes(wav, 16) for an interleaved ``[n, channels]`` block."""
    frames = block.clamp(-1, 1).contiguous().numpy()
    return (frames * (2**15 - 1)).astype("<i2").tobytes()


def _write_mp3(
    blocks: Iterator[torch.Tensor], target: Path, samplerate: int, channels: int
) -> None:
    """demucs.audio.encode_mp3 (bitrate 320, quality 2), fed in blocks (LAME buffers frames
    itself, so the bytes are the same)."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(320)
    encoder.set_in_sample_rate(samplerate)
    encoder.set_channels(channels)
    encoder.set_quality(2)
    encoder.silence()
    with target.open("wb") as fh:
        for block in blocks:
            pcm = (block.clamp_(-1, 1) * (2**15 - 1)).short()  # demucs.audio.i16_pcm
            fh.write(encoder.encode(pcm.numpy().tobytes()))
        fh.write(encoder.flush())


def _write_wav(
    blocks: Iterator[torch.Tensor], target: Path, samplerate: int, channels: int, length: int
) -> None:
    """demucs.audio.encode_wav, 16-bit PCM: the header first, then the samples."""
    data_size = length * channels * 2
    byte_rate, block_align = samplerate * channels * 2, channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, samplerate, byte_rate, block_align, 16)
    riff_size = 4 + (8 + len(fmt)) + (8 + data_size)
    with target.open("wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", riff_size) + b"WAVE")
        fh.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        fh.write(b"data" + struct.pack("<I", data_size))
        for block in blocks:
            fh.write(_i16_bytes(block))


def _write_ffmpeg(
    blocks: Iterator[torch.Tensor], target: Path, samplerate: int, channels: int
) -> None:
    """demucs.audio.encode_ffmpeg (flac), with the samples streamed to ffmpeg's stdin."""
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "s16le", "-ar", str(samplerate)]
    cmd += ["-ac", str(channels), "-i", "-", str(target)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for block in blocks:
                proc.stdin.write(_i16_bytes(block))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {target.name}: {err.decode(errors='replace')}")


def encode_stems(
    stems: Mapping[str, torch.Tensor | StagedStem],
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
