"""A stand-in separation model for load tests: demucs' model interface, almost no compute.

It is saved in demucs' own local repo format and loaded through ``get_model(name, repo=...)``
like the real weights; the worker's separation code (normalization, ``apply_model`` with its
segments, shifts and progress callback) runs for real around it. Each stem is the mix times a
learned gain, so the stems are audio and sum to the mix.
"""

from __future__ import annotations

from pathlib import Path

import torch
from demucs.states import get_state, save_with_checksum

from tests.support.model_repo import FOUR, _bag


class FastStandIn(torch.nn.Module):
    """The attributes ``apply_model`` reads, and a forward of one multiplication."""

    def __init__(self, sources: list[str], samplerate: int = 44100, segment: float = 4.0) -> None:
        super().__init__()
        self.sources = list(sources)
        self.samplerate = samplerate
        self.audio_channels = 2
        self.segment = segment
        self.gains = torch.nn.Parameter(torch.full((len(sources),), 1.0 / len(sources)))

    def valid_length(self, length: int) -> int:
        return length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        # [batch, channels, time] -> [batch, sources, channels, time]
        return mix[:, None] * self.gains[None, :, None, None]


def write_fast_repo(root: Path) -> Path:
    """A model folder where ``htdemucs`` is the stand-in; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    model = FastStandIn(FOUR)
    package = {
        "klass": FastStandIn,
        "args": (),
        "kwargs": {"sources": FOUR},
        "state": get_state(model, None, half=False),
    }
    save_with_checksum(package, root / "fa570001.th")
    _bag(root, "htdemucs", ["fa570001"])
    return root
