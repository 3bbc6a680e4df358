"""`stembot models demo DIR`, and what a worker without a model tells the operator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.config import MODELS, env_names
from tests.support.audio import make_audio
from worker.separation import ModelCache

STEMBOT = str(Path(sys.executable).with_name("stembot"))


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in env_names() and not k.startswith("HF_")}
    return dict(env, HF_HOME=str(tmp_path / "hf"), STEMBOT_DEVICE="cpu", **extra)


def test_demo_writes_models_every_offered_name_loads(tmp_path: Path) -> None:
    proc = subprocess.run(
        [STEMBOT, "models", "demo", "demo-models"],
        env=clean_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert proc.stderr == (
        "demo models (htdemucs, htdemucs_ft, htdemucs_6s, hdemucs_mmi, mdx_extra_q; random "
        "weights: the stems are noise) in demo-models: run with STEMBOT_MODEL_REPO=demo-models\n"
    )
    models = ModelCache(tmp_path / "demo-models", "cpu", keep=10)
    for name in MODELS:
        assert models.get(name).samplerate == 44100, name


def test_a_worker_without_its_model_says_what_to_do(tmp_path: Path) -> None:
    song = make_audio(tmp_path / "song.mp3", seconds=2.0)
    proc = subprocess.run(
        [STEMBOT, "split", str(song)],
        env=clean_env(tmp_path, STEMBOT_MODEL_OFFLINE="true", STEMBOT_STORAGE_DIR="storage"),
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f"stembot: cannot load the default model htdemucs: htdemucs is not in the model cache "
        f"{tmp_path / 'hf' / 'hub'}: `stembot models pull htdemucs` fetches it; or set "
        "STEMBOT_MODEL_REPO to a local Demucs model folder (`stembot models demo DIR` writes one "
        "with random weights, to try the pipeline offline)"
    )
