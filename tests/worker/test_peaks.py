"""Waveform peaks as the worker computes them after encoding (the results page only reads them)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import make_audio
from worker import peaks


def test_bucket_peaks_scale_the_loudest_bucket_to_one() -> None:
    samples = np.array([0, 100, -200, 50, 0, 0, 400, -100], dtype="<i2")
    assert peaks.bucket_peaks(samples, 4) == [0.25, 0.5, 0.0, 1.0]
    assert peaks.bucket_peaks(np.zeros(8, dtype="<i2"), 4) == [0.0] * 4
    assert peaks.bucket_peaks(np.array([], dtype="<i2"), 3) == [0.0] * 3


async def test_peaks_by_file_leaves_out_what_ffmpeg_cannot_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_audio(tmp_path / "vocals.mp3", seconds=0.5)
    bad = tmp_path / "bass.mp3"
    bad.write_bytes(b"not an mp3 at all" * 10)
    caplog.set_level(logging.WARNING, logger="worker.peaks")
    found = await peaks.peaks_by_file([good, bad])
    assert list(found) == ["vocals.mp3"]
    assert len(found["vocals.mp3"]) == peaks.BUCKETS
    assert max(found["vocals.mp3"]) == 1.0
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "no waveform peaks for bass.mp3"
    ]


def test_the_web_server_imports_nothing_from_the_worker() -> None:
    """The results page reads stored peaks; it neither decodes audio nor imports worker/."""
    code = "import sys, bots.web; print(sorted(m for m in sys.modules if m.startswith('worker')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
