"""Separation equals demucs' own Separator and CLI; progress, stop, devices, model loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sphn
import torch
from demucs.api import Separator
from demucs.audio import encode_wav

from shared.config import MODELS
from shared.errors import Cancelled, ModelUnavailable
from shared.schemas import MODEL_SOURCES, JobOptions
from worker.separation import (
    ModelCache,
    mix_stems,
    pick_device,
    separate,
    separate_to_files,
)

SR = 44100


def signal(seconds: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.2 * torch.sin(2 * torch.pi * 331 * t)
    noise = 0.05 * torch.randn(2, t.numel(), generator=gen)
    return (tone[None] + noise).clamp(-1, 1).float()


@pytest.fixture(scope="module")
def models(model_repo: Path) -> ModelCache:
    return ModelCache(model_repo, "cpu")


@pytest.mark.parametrize("name", MODELS)
def test_every_offered_model_loads_and_separates(models: ModelCache, name: str) -> None:
    model = models.get(name)
    wav = signal(3.0)
    stems = separate(model, wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    assert list(stems) == list(MODEL_SOURCES[name])
    assert all(s.shape == wav.shape for s in stems.values())


@pytest.mark.parametrize("name", ["htdemucs", "htdemucs_ft"])
def test_equals_demucs_separator(models: ModelCache, model_repo: Path, name: str) -> None:
    wav = signal(5.0, seed=1)
    ours = separate(models.get(name), wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    reference = Separator(model=name, repo=model_repo, shifts=0, overlap=0.25, device="cpu")
    _, theirs = reference.separate_tensor(wav)
    assert list(ours) == list(theirs)
    for stem in ours:
        assert torch.equal(ours[stem], theirs[stem]), stem


def run_demucs_cli(track: Path, repo: Path, out: Path, *extra: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "demucs",
            "--repo",
            str(repo),
            "-n",
            "htdemucs",
            "--shifts",
            "0",
            "--float32",
            "-d",
            "cpu",
            "-o",
            str(out),
            *extra,
            str(track),
        ],
        check=True,
        capture_output=True,
    )
    return out / "htdemucs" / track.stem


def read_float_wav(path: Path) -> torch.Tensor:
    data, sr = sphn.read(str(path))
    assert sr == SR
    return torch.from_numpy(np.asarray(data, dtype=np.float32))


def test_equals_demucs_cli(models: ModelCache, model_repo: Path, tmp_path: Path) -> None:
    track = tmp_path / "track.wav"
    encode_wav(signal(6.0, seed=2), track, SR, as_float=True)
    folder = run_demucs_cli(track, model_repo, tmp_path / "cli")
    wav = read_float_wav(track)  # the samples the CLI read
    ours = separate(models.get("htdemucs"), wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    for stem, tensor in ours.items():
        theirs = read_float_wav(folder / f"{stem}.wav")
        # the CLI writes float32 wav clamped to [-1, 1] after its clip-rescale step
        expected = tensor / max(1.01 * tensor.abs().max().item(), 1)
        assert torch.allclose(theirs, expected.clamp(-1, 1), atol=1e-6), stem


def test_worker_path_equals_demucs_cli(
    models: ModelCache, model_repo: Path, tmp_path: Path
) -> None:
    """The worker's own path: segments streamed out to staged files, read back in blocks."""
    track = tmp_path / "long.wav"
    encode_wav(signal(14.0, seed=4), track, SR, as_float=True)  # more than one read block
    folder = run_demucs_cli(track, model_repo, tmp_path / "cli")
    wav = read_float_wav(track)
    staged = separate_to_files(
        models.get("htdemucs"),
        wav,
        tmp_path / "stems",
        shifts=0,
        overlap=0.25,
        segment=None,
        device="cpu",
    )
    assert list(staged) == list(MODEL_SOURCES["htdemucs"])
    for stem, file in staged.items():
        tensor = torch.cat([block.t() for block in file.frames()], dim=1)
        theirs = read_float_wav(folder / f"{stem}.wav")
        expected = tensor / max(1.01 * file.peak.item(), 1)
        assert torch.allclose(theirs, expected.clamp(-1, 1), atol=1e-6), stem


def test_two_stems_equal_demucs_cli(models: ModelCache, model_repo: Path, tmp_path: Path) -> None:
    track = tmp_path / "song.wav"
    encode_wav(signal(4.0, seed=3), track, SR, as_float=True)
    folder = run_demucs_cli(track, model_repo, tmp_path / "cli", "--two-stems", "vocals")
    wav = read_float_wav(track)
    stems = separate(
        models.get("htdemucs"), wav, shifts=0, overlap=0.25, segment=None, device="cpu"
    )
    ours = mix_stems(stems, "vocals")
    assert list(ours) == JobOptions(stems="vocals").output_stems()
    for ours_name, cli_name in (("vocals", "vocals"), ("instrumental", "no_vocals")):
        tensor = ours[ours_name]
        expected = tensor / max(1.01 * tensor.abs().max().item(), 1)
        theirs = read_float_wav(folder / f"{cli_name}.wav")
        assert torch.allclose(theirs, expected.clamp(-1, 1), atol=1e-6), ours_name


def test_progress_is_monotonic_and_complete(models: ModelCache) -> None:
    seen: list[float] = []
    separate(
        models.get("htdemucs_ft"),
        signal(8.0),
        shifts=2,
        overlap=0.25,
        segment=None,
        device="cpu",
        on_progress=seen.append,
    )
    assert seen == sorted(seen)
    assert seen[-1] == 100.0
    assert len([p for p in seen if 0 < p < 100]) >= 8  # 2 models x 2 shifts x segments


def test_should_stop_raises_cancelled_before_the_end(models: ModelCache) -> None:
    calls = 0
    progress: list[float] = []

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    with pytest.raises(Cancelled):
        separate(
            models.get("htdemucs"),
            signal(20.0),
            shifts=0,
            overlap=0.25,
            segment=None,
            device="cpu",
            on_progress=progress.append,
            should_stop=stop,
        )
    assert calls == 4
    assert not progress or progress[-1] < 50


def test_mix_stems_all_keeps_every_stem() -> None:
    stems = {n: torch.full((2, 4), float(i)) for i, n in enumerate(MODEL_SOURCES["htdemucs"])}
    assert mix_stems(stems, "all") == stems
    drums = mix_stems(stems, "drums")
    assert list(drums) == ["drums", "no_drums"]
    assert torch.equal(drums["no_drums"], torch.full((2, 4), 1.0 + 2.0 + 3.0))


def test_unknown_or_missing_model_is_unavailable(model_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        ModelCache(model_repo, "cpu").get("nosuchmodel")
    assert info.value.user_message == (
        "The model 'nosuchmodel' isn't available on this server right now. Try the default model."
    )
    with pytest.raises(ModelUnavailable):
        ModelCache(tmp_path / "missing", "cpu").get("htdemucs")


def test_default_model_stays_warm(model_repo: Path) -> None:
    cache = ModelCache(model_repo, "cpu", keep=1)
    default = cache.get("htdemucs")
    cache.get("hdemucs_mmi")
    cache.get("htdemucs_6s")
    cache.get("mdx_extra_q")
    assert cache.get("htdemucs") is default
    assert len(cache._models) == 2


def test_device_choice() -> None:
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")
