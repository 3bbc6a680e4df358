"""Files users should not send (or send by mistake), built by ffmpeg and byte surgery.

Each builder writes into ``folder`` and returns the path. Nothing is checked in: every file
is generated, so the corpus documents how each one is made.
"""

from __future__ import annotations

import io
import math
import random
import struct
import subprocess
import tarfile
import wave
import zipfile
from pathlib import Path

from tests.support.audio import make_audio


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


# --- not audio at all ----------------------------------------------------------------------


def text(folder: Path, name: str = "song.mp3") -> Path:
    path = folder / name
    path.write_text("This is my favourite song, honest.\n" * 40)
    return path


def png(folder: Path, name: str = "cover.mp3") -> Path:
    path = folder / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x32", "-frames:v", "1", str(path))
    return path.rename(folder / name)


def pdf(folder: Path, name: str = "score.wav") -> Path:
    path = folder / name
    path.write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    return path


def html(folder: Path, name: str = "song.m4a") -> Path:
    path = folder / name
    path.write_text("<!doctype html><html><body><audio src='song.m4a'></audio></body></html>")
    return path


def elf(folder: Path, name: str = "song.flac") -> Path:
    path = folder / name
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(random.Random(1).randbytes(4000)))
    return path


def random_bytes(folder: Path, name: str = "song.ogg") -> Path:
    path = folder / name
    data = bytearray(random.Random(2).randbytes(64 * 1024))
    data[:4] = b"\x00\x13\x37\x42"  # no container's magic, no MPEG frame sync
    path.write_bytes(bytes(data))
    return path


def zip_archive(folder: Path, song: Path, name: str = "song.zip") -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(song, song.name)
    path = folder / name
    path.write_bytes(buf.getvalue())
    return path


def tar_gz_archive(folder: Path, song: Path, name: str = "song.tar.gz") -> Path:
    path = folder / name
    with tarfile.open(path, "w:gz") as tf:
        tf.add(song, song.name)
    return path


def tar_archive(folder: Path, song: Path, name: str = "song.tar") -> Path:
    path = folder / name
    with tarfile.open(path, "w") as tf:
        tf.add(song, song.name)
    return path


def video_without_audio(folder: Path, name: str = "clip.mp4") -> Path:
    path = folder / name
    _ffmpeg("-f", "lavfi", "-i", "testsrc=d=2:s=64x64:r=10", "-c:v", "mpeg4", str(path))
    return path


# --- damaged audio ----------------------------------------------------------------------


def truncated(song: Path, folder: Path, keep: int = 300) -> Path:
    """Only the first ``keep`` bytes of ``song`` (an upload cut off early)."""
    path = folder / f"truncated-{song.name}"
    path.write_bytes(song.read_bytes()[:keep])
    return path


def garbage(song: Path, folder: Path, start: float, end: float = 1.0, tag: str = "") -> Path:
    """``song`` with the bytes from ``start`` to ``end`` (fractions of its size) random."""
    data = bytearray(song.read_bytes())
    lo, hi = int(len(data) * start), int(len(data) * end)
    data[lo:hi] = random.Random(3).randbytes(hi - lo)
    path = folder / f"garbage{tag}-{song.name}"
    path.write_bytes(bytes(data))
    return path


def garbage_after(song: Path, folder: Path, offset: int) -> Path:
    """``song`` with every byte from ``offset`` on random: a valid header, then noise."""
    data = bytearray(song.read_bytes())
    data[offset:] = random.Random(4).randbytes(len(data) - offset)
    path = folder / f"noise-after-header-{song.name}"
    path.write_bytes(bytes(data))
    return path


# --- empty, silent, lying ----------------------------------------------------------------


def empty(folder: Path, name: str = "song.mp3") -> Path:
    path = folder / name
    path.write_bytes(b"")
    return path


def wav_without_samples(folder: Path) -> Path:
    path = folder / "nothing.wav"
    with wave.open(str(path), "wb") as wav:  # a valid header and no samples
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
    return path


def silent(folder: Path, ext: str, seconds: float = 3.0) -> Path:
    path = folder / f"silence.{ext}"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", str(seconds), str(path))
    return path


def mp3_with_lying_length(folder: Path, seconds: float, frames_claimed: int) -> Path:
    """An mp3 whose Info header claims ``frames_claimed`` frames (1152 samples each)."""
    path = make_audio(folder / f"lying-{frames_claimed}.mp3", seconds=seconds)
    data = bytearray(path.read_bytes())
    at = data.find(b"Info")
    assert at > 0, "ffmpeg wrote no Info header"
    flags = int.from_bytes(data[at + 4 : at + 8], "big")
    assert flags & 1, "the Info header has no frame count"
    data[at + 8 : at + 12] = frames_claimed.to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


def wav_with_rate(folder: Path, rate: int, *, real: bool) -> Path:
    """A 1 s tone at ``rate`` Hz (``real``), or a 44.1 kHz file whose header claims ``rate``."""
    path = folder / f"rate-{rate}-{'real' if real else 'header'}.wav"
    if real:
        return make_audio(path, seconds=1.0, rate=rate, channels=1)
    make_audio(path, seconds=1.0)
    data = bytearray(path.read_bytes())
    fmt = data.find(b"fmt ")  # then: size, format, channels, rate, bytes/s, align, bits
    (channels,) = struct.unpack("<H", data[fmt + 10 : fmt + 12])
    data[fmt + 12 : fmt + 16] = struct.pack("<I", rate)
    data[fmt + 16 : fmt + 20] = struct.pack("<I", rate * channels * 2)  # 16-bit samples
    path.write_bytes(bytes(data))
    return path


def wav_with_channels(folder: Path, channels: int) -> Path:
    """One second of a tone on ``channels`` channels (8-bit, 8 kHz: small)."""
    path = folder / f"{channels}-channels.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(
            b"".join(bytes([128 + int(60 * math.sin(i / 5))]) * channels for i in range(8000))
        )
    return path
