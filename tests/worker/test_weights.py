"""Weights that cannot run code: what the safetensors loader refuses, and the hash checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from tests.support.fake_hub import git_blob_sha1, safetensors_bytes
from worker.demo_models import FOUR, SMALL_HT, _package
from worker.weights import WeightsRefused, load_safetensors_model, verify


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_demucs_model_loads_with_its_weights(tmp_path: Path) -> None:
    from demucs.htdemucs import HTDemucs

    package = _package(HTDemucs, {"sources": FOUR, **SMALL_HT}, 7)
    model = load_safetensors_model(write(tmp_path / "m.safetensors", safetensors_bytes(package)))
    assert isinstance(model, HTDemucs)
    for key, value in package["state"].items():
        assert torch.equal(model.state_dict()[key], value.float()), key


def test_a_class_that_is_not_a_demucs_model_is_refused(tmp_path: Path) -> None:
    from demucs.htdemucs import HTDemucs

    package = _package(HTDemucs, {"sources": FOUR, **SMALL_HT}, 7)
    package["args"] = ["touch pwned"]
    path = write(tmp_path / "evil.safetensors", safetensors_bytes(package, klass="os.system"))
    with pytest.raises(WeightsRefused) as caught:
        load_safetensors_model(path)
    assert (
        str(caught.value)
        == "evil.safetensors asks for class 'os.system', not a Demucs model: refused"
    )
    assert not (tmp_path / "pwned").exists()


def test_a_state_naming_anything_but_a_dtype_is_refused(tmp_path: Path) -> None:
    structure = {"_dict": [["w", {"_tensor": "w"}], ["f", {"_class": "os.system"}]]}
    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": "[]",
        "kwargs": json.dumps({"sources": FOUR, **SMALL_HT}),
        "structure": json.dumps(structure),
    }
    path = write(tmp_path / "s.safetensors", save({"w": torch.zeros(1)}, metadata))
    with pytest.raises(WeightsRefused) as caught:
        load_safetensors_model(path, "hub/s.safetensors")
    assert str(caught.value) == "hub/s.safetensors names 'os.system' in its state: refused"


def test_a_pickle_under_a_safetensors_name_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "p.safetensors"
    torch.save({"klass": dict, "args": (), "kwargs": {}, "state": {}}, path)
    with pytest.raises(WeightsRefused) as caught:
        load_safetensors_model(path)
    assert str(caught.value).startswith("p.safetensors is not a readable safetensors file (")


def test_whole_file_hashes(tmp_path: Path) -> None:
    data = b"models: [a1b2c3d4]\n"
    path = write(tmp_path / "bag.yaml", data)
    verify(path, hashlib.sha256(data).hexdigest(), "bag")
    verify(path, git_blob_sha1(data), "bag")  # the hub's etag of a small (non-LFS) file
    with pytest.raises(WeightsRefused) as caught:
        verify(path, "0" * 64, "bag")
    got = hashlib.sha256(data).hexdigest()[:16]
    assert str(caught.value) == f"bag failed its hash check (got {got}..., expected {'0' * 16}...)"
    with pytest.raises(WeightsRefused) as caught:
        verify(path, "W/abc", "bag")
    assert str(caught.value) == "bag.yaml: the hub gave no sha256 or git hash for it ('W/abc')"
