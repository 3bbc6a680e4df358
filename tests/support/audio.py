"""Generate test audio with real ffmpeg (no audio files are checked in)."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import aiohttp
import numpy as np


def make_audio(
    path: Path,
    *,
    seconds: float = 3.0,
    rate: int = 44100,
    channels: int = 2,
    extra: list[str] | None = None,
) -> Path:
    """A short musical-ish signal (two tones + noise) encoded by the extension of ``path``."""
    layout = "mono" if channels == 1 else "stereo"
    src = (
        f"aevalsrc='0.3*sin(2*PI*220*t)+0.2*sin(2*PI*330*t)*gt(mod(t\\,0.5)\\,0.25)"
        f"+0.05*(random(0)-0.5)':s={rate}:d={seconds}:c={layout}"
    )
    if channels > 2:
        src = f"aevalsrc='0.3*sin(2*PI*220*t)':s={rate}:d={seconds}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src]
    if channels > 2:
        cmd += ["-ac", str(channels)]
    cmd += list(extra or [])
    cmd.append(str(path))
    subprocess.run(cmd, check=True)
    return path


async def wav_samples(url: str) -> np.ndarray:
    """The samples of a 16-bit wav file a server hands out, as floats in [-1, 1)."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, resp.status
        data = await resp.read()
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2
        frames = w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768
