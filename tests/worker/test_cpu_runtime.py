"""The CPU runtimes of the per-segment model call (worker.cpu_runtime) against our fp32 path.

Threshold: a runtime's stems stay within 60 dB SNR of the fp32 torch path (the deviation of
fp32 arithmetic done in another order; a stem 60 dB down is far below anything audible under
the music itself). bf16 on the CPU (STEMBOT_CPU_PRECISION) deviates more, by design: its
threshold is 40 dB, under what an mp3 at 320 kbit/s changes in the same stems (measured by
``python -m bench --variants torch,bf16``; the README's Benchmark section gives the figures).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from shared.config import SeparationSettings
from worker import cpu_runtime
from worker.cpu_runtime import Core, forward_with, model_digest, prepare, segment_call
from worker.precision import cpu_precision, native_bf16
from worker.separation import ModelCache, Tuning, attempts, separate

SR = 44100
THRESHOLD_DB = 60.0
BF16_THRESHOLD_DB = 40.0


def snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    noise = (reference - other).pow(2).sum().clamp_min(1e-30)
    return float(10 * torch.log10(reference.pow(2).sum() / noise))


def signal(seconds: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.2 * torch.sin(2 * torch.pi * 331 * t)
    return (tone[None] + 0.05 * torch.randn(2, t.numel(), generator=gen)).float()


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports go to a folder of this test session, not the user's ~/.cache."""
    folder = tmp_path_factory.getbasetemp() / "onnx-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder / "stembot" / "onnx"


@pytest.fixture(scope="module")
def models(model_repo: Path) -> ModelCache:
    return ModelCache(model_repo, "cpu")


def test_split_forward_is_demucs_forward_exactly(models: ModelCache) -> None:
    """Our forward around the middle is demucs' own, bit for bit (full and padded segments)."""
    model = models.get("htdemucs").models[0]
    full = int(model.segment * SR)
    with torch.inference_mode():
        for length in (full, full - 777):
            mix = signal(length / SR, seed=length)[None, :, :length]
            assert torch.equal(forward_with(model, mix, Core(model)), model(mix)), length


@pytest.mark.parametrize(
    ("runtime", "name"),
    [
        ("onnx", "htdemucs"),
        ("onnx", "htdemucs_ft"),  # a bag: each part its own export
        # inductor compiles C++ for minutes on a small shared CPU
        pytest.param("compile", "htdemucs", marks=pytest.mark.timeout(900)),
    ],
)
def test_runtime_stays_within_threshold_of_fp32(
    models: ModelCache, runtime: cpu_runtime.Runtime, name: str
) -> None:
    model = models.get(name)
    assert prepare(model, runtime)  # really built: not the torch fallback
    part = model.models[0]
    assert segment_call(part, runtime) is not part
    wav = signal(9.0, seed=2)
    common = {"shifts": 1, "overlap": 0.25, "segment": None, "device": "cpu"}
    random.seed(0)  # the shift demucs draws
    ours = separate(model, wav, tuning=Tuning(cpu_runtime=runtime), **common)  # type: ignore[arg-type]
    random.seed(0)
    reference = separate(model, wav, tuning=Tuning(cpu_runtime="torch"), **common)  # type: ignore[arg-type]
    assert list(ours) == list(reference)
    for stem in reference:
        assert snr_db(reference[stem], ours[stem]) >= THRESHOLD_DB, stem


@pytest.mark.parametrize("runtime", ["onnx", "compile"])
def test_runtime_draws_from_random_as_demucs_does(
    models: ModelCache, runtime: cpu_runtime.Runtime
) -> None:
    """demucs' transformer takes one ``random`` draw per forward; later shifts depend on it."""
    part = models.get("htdemucs").models[0]
    assert prepare(part, runtime)
    mix = signal(2.0, seed=7)[None]
    states = []
    for call in (part, segment_call(part, runtime)):
        random.seed(3)
        with torch.inference_mode():
            call(mix)
        states.append(random.random())
    assert states[0] == states[1]


def test_other_architectures_run_demucs_forward(models: ModelCache) -> None:
    model = models.get("hdemucs_mmi")
    assert not prepare(model, "onnx")
    part = model.models[0]
    assert segment_call(part, "onnx") is part
    wav = signal(3.0, seed=5)
    common = {"shifts": 0, "overlap": 0.25, "segment": None, "device": "cpu"}
    ours = separate(model, wav, tuning=Tuning(cpu_runtime="onnx"), **common)  # type: ignore[arg-type]
    reference = separate(model, wav, **common)  # type: ignore[arg-type]
    assert all(torch.equal(ours[s], reference[s]) for s in reference)


def test_onnx_export_is_kept_and_reused(
    model_repo: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second worker (a new model object, same weights) loads the kept export."""
    first = ModelCache(model_repo, "cpu").get("htdemucs").models[0]
    assert prepare(first, "onnx")
    kept = onnx_cache / f"htdemucs-core-{model_digest(first)}.onnx"
    assert kept.is_file()

    def no_export(*_: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(cpu_runtime, "_export", no_export)
    files = sorted(onnx_cache.iterdir())
    second = ModelCache(model_repo, "cpu").get("htdemucs").models[0]
    assert second is not first
    assert prepare(second, "onnx")
    assert sorted(onnx_cache.iterdir()) == files


def test_a_failing_runtime_falls_back_to_torch(
    models: ModelCache, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model = models.get("htdemucs_6s").models[0]

    def broken(*_: object) -> None:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(cpu_runtime, "_export", broken)
    assert not prepare(model, "onnx")
    assert segment_call(model, "onnx") is model
    assert "cpu runtime onnx unavailable, running torch: exporter broke" in caplog.text


def test_settings_choose_the_cpu_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SeparationSettings().cpu_runtime == "torch"
    monkeypatch.setenv("STEMBOT_CPU_RUNTIME", "compile")
    settings = SeparationSettings()
    assert Tuning.for_device(settings, "cpu").cpu_runtime == "compile"
    assert Tuning.for_device(settings, "cuda").cpu_runtime == "torch"
    monkeypatch.setenv("STEMBOT_CPU_RUNTIME", "tensorrt")
    with pytest.raises(ValidationError, match="cpu_runtime"):
        SeparationSettings()


def test_cuda_plans_run_torch_and_the_cpu_fallback_too(models: ModelCache) -> None:
    model = models.get("htdemucs")
    plans = attempts(model, "cuda", None, Tuning(batch=4, cpu_fallback=True, cpu_runtime="onnx"))
    assert [(p.device, p.runtime) for p in plans] == [
        ("cuda", "torch"),
        ("cuda", "torch"),
        ("cpu", "torch"),
    ]
    cpu = attempts(model, "cpu", None, Tuning(cpu_runtime="onnx"))
    assert [(p.device, p.runtime) for p in cpu] == [("cpu", "onnx")]


def test_bf16_on_the_cpu_stays_within_its_threshold(models: ModelCache) -> None:
    """The CPU's bf16 really runs (the stems differ from fp32) and stays 40 dB under them."""
    model = models.get("htdemucs")
    wav = signal(9.0, seed=4)
    common = {"shifts": 1, "overlap": 0.25, "segment": None, "device": "cpu"}
    random.seed(0)
    ours = separate(model, wav, tuning=Tuning(precision="bf16"), **common)  # type: ignore[arg-type]
    random.seed(0)
    reference = separate(model, wav, tuning=Tuning(), **common)  # type: ignore[arg-type]
    for stem in reference:
        assert not torch.equal(reference[stem], ours[stem]), stem
        assert snr_db(reference[stem], ours[stem]) >= BF16_THRESHOLD_DB, stem


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it() -> None:
    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags on this system")
    assert native_bf16() == bool({"amx_tile", "avx512_bf16"} & flags)
    assert cpu_precision("auto") == ("bf16" if native_bf16() else "fp32")
    assert (cpu_precision("fp32"), cpu_precision("bf16")) == ("fp32", "bf16")


def test_settings_choose_the_cpu_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SeparationSettings().cpu_precision == "auto"
    monkeypatch.setenv("STEMBOT_CPU_PRECISION", "bf16")
    assert Tuning.for_device(SeparationSettings(), "cpu").precision == "bf16"
    assert Tuning.for_device(SeparationSettings(), "cuda").precision == "fp32"  # CUDA's own
    monkeypatch.setenv("STEMBOT_CPU_RUNTIME", "onnx")  # an export runs fp32
    assert Tuning.for_device(SeparationSettings(), "cpu").precision == "fp32"
    monkeypatch.setenv("STEMBOT_CPU_PRECISION", "fp16")  # no fp16 on the CPU
    with pytest.raises(ValidationError, match="cpu_precision"):
        SeparationSettings()
