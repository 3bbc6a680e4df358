"""GPU only: how far reduced precision (and batching) moves the separation from fp32.

A mix is built from four known sources (drum hits, bass, chords, a sung-like line). It is
separated in fp32 and under each reduced precision; each stem's SDR against its known source
is computed for both (``10 log10(sum s^2 / sum (s - est)^2)``, the "new SDR" demucs itself
reports), and the deviation is the largest difference between the two over the stems. The
0.1 dB rule for ``STEMBOT_CUDA_PRECISION``: turn it on where the deviation stays under it.
With random weights the SDRs themselves mean nothing, but the deviation still shows what the
precision changes; pass ``--model-repo`` with the released weights for meaningful figures.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from worker.overlap_add import Precision
from worker.separation import Tuning, separate

SR = 44100


def known_sources(seconds: float) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * SR)) / SR
    beat = (t % 0.5) < 0.05
    drums = 0.5 * torch.randn(t.numel(), generator=gen) * beat
    bass = 0.4 * torch.sin(2 * math.pi * 55 * t)
    other = sum(0.1 * torch.sin(2 * math.pi * f * t) for f in (261.6, 329.6, 392.0))
    vibrato = 440 * t + 3 * torch.sin(2 * math.pi * 5 * t)
    vocals = 0.3 * torch.sin(2 * math.pi * vibrato) + 0.1 * torch.sin(4 * math.pi * vibrato)
    return {
        "drums": torch.stack([drums, drums]),
        "bass": torch.stack([bass, bass]),
        "other": torch.stack([other, 0.8 * other]),  # type: ignore[list-item]
        "vocals": torch.stack([vocals, vocals]),
    }


def sdr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    num = reference.double().pow(2).sum()
    den = (reference.double() - estimate.double()).pow(2).sum()
    return float(10 * torch.log10((num + 1e-8) / (den + 1e-8)))


def precision_check(model: Any, seconds: float = 30.0, batch: int = 4) -> dict[str, Any]:
    """SDR deviation of each reduced precision from fp32 on CUDA (``{}`` without CUDA)."""
    if not torch.cuda.is_available():
        return {}
    sources = known_sources(seconds)
    mix = sum(sources.values())
    assert isinstance(mix, torch.Tensor)

    def run(precision: Precision, batch: int) -> dict[str, torch.Tensor]:
        return separate(
            model,
            mix,
            shifts=0,
            overlap=0.25,
            segment=None,
            device="cuda",
            tuning=Tuning(batch=batch, precision=precision),
        )

    reference = run("fp32", 1)
    ref_sdr = {name: sdr(sources[name], reference[name]) for name in sources}
    report: dict[str, Any] = {"seconds": seconds, "sdr_fp32_db": _rounded(ref_sdr)}
    batched = run("fp32", batch)
    report[f"fp32_batch{batch}_max_abs_diff"] = max(
        float((batched[n] - reference[n]).abs().max()) for n in sources
    )
    for precision in ("fp16", "bf16"):
        try:
            out = run(precision, batch)
        except RuntimeError as exc:  # e.g. bf16 on a GPU without it
            report[precision] = {"error": str(exc).splitlines()[0][:200]}
            continue
        got = {name: sdr(sources[name], out[name]) for name in sources}
        deviation = max(abs(got[n] - ref_sdr[n]) for n in sources)
        report[precision] = {
            "sdr_db": _rounded(got),
            "max_sdr_deviation_db": round(deviation, 4),
            "within_0_1_db": deviation <= 0.1,
            # how close to fp32 the output itself is, whatever the sources
            "sdr_vs_fp32_db": _rounded({n: sdr(reference[n], out[n]) for n in sources}),
        }
    report["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return report


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}
