"""The streamed separation equals demucs' own, and its staged stems and block-wise encoding
equal what demucs writes, while a long track's stems never sit in memory."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from demucs.api import Separator
from demucs.audio import save_audio

from shared.schemas import AudioFormat
from worker.audio import encode
from worker.separation import ModelCache, Tuning, mix_stems, separate, separate_to_files
from worker.staging import BLOCK, StagedStem, mix_staged

SR = 44100


def noise(seconds: float, seed: int = 0, level: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (level * torch.randn(2, int(seconds * SR), generator=gen)).clamp(-1, 1)


@pytest.fixture(scope="module")
def models(model_repo: Path) -> ModelCache:
    return ModelCache(model_repo, "cpu", keep=10)


@pytest.mark.parametrize(
    ("name", "shifts", "overlap", "segment"),
    [
        ("htdemucs", 1, 0.25, None),  # the defaults: one pass streamed straight out
        ("htdemucs", 2, 0.25, None),  # several shifts sum in one buffer
        ("htdemucs", 0, 0.5, 1.5),  # shorter segment than trained, larger overlap
        ("htdemucs_ft", 1, 0.25, None),  # a weighted bag
        ("htdemucs_6s", 1, 0.25, None),
        ("hdemucs_mmi", 1, 0.25, 1.0),  # valid length = chunk length
        ("mdx_extra_q", 1, 0.25, None),  # Demucs v2 + HDemucs: their own valid lengths
    ],
)
def test_streamed_separation_equals_demucs_separator(
    models: ModelCache,
    model_repo: Path,
    tmp_path: Path,
    name: str,
    shifts: int,
    overlap: float,
    segment: float | None,
) -> None:
    wav = noise(6.3, seed=4)
    reference = Separator(
        model=name,
        repo=model_repo,
        shifts=shifts,
        overlap=overlap,
        segment=segment,  # type: ignore[arg-type]  # demucs annotates int, takes float
        device="cpu",
    )
    random.seed(7)  # the shift offsets: demucs and we draw them at the same points
    _, theirs = reference.separate_tensor(wav)
    model = models.get(name)
    options = {"shifts": shifts, "overlap": overlap, "segment": segment, "device": "cpu"}
    random.seed(7)
    ours = separate(model, wav, **options)  # type: ignore[arg-type]
    random.seed(7)
    staged = separate_to_files(model, wav, tmp_path / "stems", **options)  # type: ignore[arg-type]
    assert list(ours) == list(theirs) == list(staged)
    for stem, expected in theirs.items():
        assert torch.equal(ours[stem], expected), stem
        assert torch.equal(staged[stem].tensor(), expected), stem
        assert staged[stem].length == wav.shape[-1]
        assert torch.equal(staged[stem].peak, expected.abs().max()), stem


def test_batched_segments_match_one_at_a_time(models: ModelCache) -> None:
    """The CUDA batching, run on CPU: the same segments through the model three at a time."""
    wav = noise(9.0, seed=5)
    model = models.get("htdemucs")
    single = separate(model, wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    batched = separate(
        model, wav, shifts=0, overlap=0.25, segment=None, device="cpu", tuning=Tuning(batch=3)
    )
    for stem, expected in single.items():
        assert torch.allclose(batched[stem], expected, atol=1e-5), stem
        assert not torch.equal(expected, torch.zeros_like(expected))


def test_staged_karaoke_mix_equals_the_in_memory_mix(models: ModelCache, tmp_path: Path) -> None:
    wav = noise(13.0, seed=6)  # longer than one read block
    assert wav.shape[-1] > BLOCK
    model = models.get("htdemucs")
    in_memory = separate(model, wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    staged = separate_to_files(
        model, wav, tmp_path / "stems", shifts=0, overlap=0.25, segment=None, device="cpu"
    )
    theirs = mix_stems(in_memory, "vocals")
    ours = mix_staged(staged, "vocals")
    assert list(ours) == list(theirs) == ["vocals", "instrumental"]
    for stem, expected in theirs.items():
        assert torch.equal(ours[stem].tensor(), expected), stem
        assert torch.equal(ours[stem].peak, expected.abs().max()), stem
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == [
        "instrumental.f32",
        "vocals.f32",
    ]


@pytest.mark.parametrize("fmt", list(AudioFormat))
@pytest.mark.parametrize("level", [0.2, 3.0])  # 3.0: clips, so demucs rescales the stem
def test_blockwise_encoding_writes_demucs_bytes(
    tmp_path: Path, fmt: AudioFormat, level: float
) -> None:
    wav = noise(7.0, seed=8, level=level)  # more than one block
    theirs = tmp_path / f"theirs.{fmt.value}"
    save_audio(wav, theirs, SR, bitrate=320, clip="rescale", bits_per_sample=16, preset=2)
    staged = StagedStem(tmp_path / "stem.f32", 2)
    for start in range(0, wav.shape[-1], 100_000):
        staged.append(wav[:, start : start + 100_000])
    from_tensor = encode(wav, tmp_path / "tensor", fmt, SR)
    from_file = encode(staged, tmp_path / "staged", fmt, SR)
    assert from_tensor.read_bytes() == theirs.read_bytes()
    assert from_file.read_bytes() == theirs.read_bytes()


PEAK_CHILD = """
import json, sys, tempfile
from pathlib import Path
import torch
from worker.separation import ModelCache, separate, separate_to_files

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024

def growth(seconds, staged):
    wav = (0.3 * torch.randn(2, int(seconds * 44100))).clamp(-1, 1)
    options = dict(shifts=1, overlap=0.25, segment=None, device="cpu")
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    before = status("VmRSS")
    if staged:
        with tempfile.TemporaryDirectory() as folder:
            separate_to_files(model, wav, Path(folder), **options)
    else:
        separate(model, wav, **options)
    return status("VmHWM") - before

torch.set_num_threads(1)
model = ModelCache(Path(sys.argv[1]), "cpu").get("htdemucs")
growth(5, True)  # warm up
print(json.dumps([growth(20, True), growth(240, True), growth(240, False)]))
"""


@pytest.mark.timeout(300)
def test_staged_stems_stay_out_of_memory(model_repo: Path) -> None:
    """A 4-minute track's stems (4 x 81 MB of float32) never sit in the worker's memory."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, str(model_repo)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    short, long, in_memory = json.loads(out.stdout.strip().splitlines()[-1])
    stems_mb = 240 * SR * 2 * 4 * 4 / 2**20  # 323 MB
    # a 12x longer track: the peak grows by the mono reference demucs normalizes with (38 MB)
    # and allocator noise, far less than the stems; holding them in memory adds them all
    assert long - short < 0.3 * stems_mb, (short, long, in_memory)
    assert in_memory - long > 0.6 * stems_mb, (short, long, in_memory)


def test_reduced_precision_is_swapped_in_for_one_separation(models: ModelCache) -> None:
    """The CUDA fp16/bf16 path, run with CPU autocast (bf16): convolutions and transformer in
    reduced precision, the rest float32; the shared model is itself again afterwards."""
    model = models.get("htdemucs")
    wav = noise(5.0, seed=9)
    fp32 = separate(model, wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    bf16 = separate(
        model,
        wav,
        shifts=0,
        overlap=0.25,
        segment=None,
        device="cpu",
        tuning=Tuning(precision="bf16"),
    )
    again = separate(model, wav, shifts=0, overlap=0.25, segment=None, device="cpu")
    for stem, reference in fp32.items():
        assert bf16[stem].dtype == torch.float32
        error = (bf16[stem] - reference).pow(2).sum() / reference.pow(2).sum()
        assert 1e-9 < error < 1e-3, stem  # changed, by less than -30 dB
        assert torch.equal(again[stem], reference), stem
    assert [type(layer).__name__ for layer in model.models[0].encoder] == ["HEncLayer"] * 4
