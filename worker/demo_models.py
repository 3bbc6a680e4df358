"""Demo models: random weights of the real Demucs architectures, in a local model folder.

`stembot models demo DIR` writes them (and `make run-demo`, the tests and the bench use them):
with ``STEMBOT_MODEL_REPO=DIR`` every part of the bot runs for real, offline, though the
stems are noise. The folder is in demucs' own local format (``NAME.yaml`` bags listing model
signatures, and ``SIG-CHECKSUM.th`` packages with klass/args/kwargs/state), so
``demucs.pretrained.get_model(name, repo=root)`` loads it through exactly the code path that
loads a local folder of released weights (a folder the operator gives is trusted, pickles
included: these are written here, not downloaded). Small configurations keep it fast;
``full_size=True`` gives htdemucs its released architecture (for benchmarks).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
import yaml
from demucs.demucs import Demucs
from demucs.hdemucs import HDemucs
from demucs.htdemucs import HTDemucs
from demucs.states import get_state, save_with_checksum

FOUR = ["drums", "bass", "other", "vocals"]
SIX = [*FOUR, "guitar", "piano"]

# Tiny but real configurations: same classes, far fewer channels/layers.
SMALL_HT: dict[str, Any] = {
    "channels": 8,
    "depth": 4,
    "t_layers": 1,
    "t_heads": 2,
    "segment": 2.0,
    "bottom_channels": 0,
    "dconv_depth": 1,
    "nfft": 1024,
}
FULL_HT: dict[str, Any] = {"segment": 7.8}  # htdemucs as released: defaults, 7.8 s segments
SMALL_H: dict[str, Any] = {"channels": 8, "depth": 4, "nfft": 1024, "segment": 2.0}
SMALL_D: dict[str, Any] = {"channels": 8, "depth": 4, "segment": 2.0}


def _package(klass: type[torch.nn.Module], kwargs: dict[str, Any], seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = klass(**kwargs)
    # demucs' @capture_init records (args, kwargs); keep only what the class takes
    params = inspect.signature(klass).parameters
    kept = {k: v for k, v in kwargs.items() if k in params}
    return {"klass": klass, "args": (), "kwargs": kept, "state": get_state(model, None, half=True)}


def _save(root: Path, sig: str, package: dict[str, Any]) -> None:
    save_with_checksum(package, root / f"{sig}.th")


def _bag(
    root: Path,
    name: str,
    sigs: list[str],
    weights: list[list[float]] | None = None,
    segment: float | None = None,
) -> None:
    bag: dict[str, Any] = {"models": sigs}
    if weights is not None:
        bag["weights"] = weights
    if segment is not None:
        bag["segment"] = segment
    (root / f"{name}.yaml").write_text(yaml.safe_dump(bag))


def write_model_repo(root: Path, *, full_size: bool = False, seed: int = 0) -> Path:
    """Write the five models the bot offers; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    ht = FULL_HT if full_size else SMALL_HT
    _save(root, "a1b2c3d4", _package(HTDemucs, {"sources": FOUR, **ht}, seed))
    _bag(root, "htdemucs", ["a1b2c3d4"])
    if full_size:
        return root  # the benchmark only needs htdemucs

    # htdemucs_ft: a bag of specialised models, each weighted towards its own stems
    _save(root, "f1000001", _package(HTDemucs, {"sources": FOUR, **SMALL_HT}, seed + 1))
    _save(root, "f1000002", _package(HTDemucs, {"sources": FOUR, **SMALL_HT}, seed + 2))
    _bag(
        root,
        "htdemucs_ft",
        ["f1000001", "f1000002"],
        weights=[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]],
    )

    _save(root, "b6b6b6b6", _package(HTDemucs, {"sources": SIX, **SMALL_HT}, seed + 3))
    _bag(root, "htdemucs_6s", ["b6b6b6b6"])

    _save(root, "c0ffee01", _package(HDemucs, {"sources": FOUR, **SMALL_H}, seed + 4))
    _bag(root, "hdemucs_mmi", ["c0ffee01"])

    _save(root, "d0d0d0d1", _package(Demucs, {"sources": FOUR, **SMALL_D}, seed + 5))
    _save(root, "d0d0d0d2", _package(HDemucs, {"sources": FOUR, **SMALL_H}, seed + 6))
    _bag(root, "mdx_extra_q", ["d0d0d0d1", "d0d0d0d2"], segment=2.0)
    return root
