"""Where separated stems wait for the encoder: in memory, or in raw files on disk.

A 10-minute stereo stem is 212 MB of float32; four of them held in memory next to the model's
activations is most of a CPU worker's peak. The worker writes each finished stretch to a raw
float32 file instead (the page cache holds it, not the process) and keeps only its peak, which
the encoder needs for demucs' clip-avoiding rescale before it reads the stem back in blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

import numpy as np
import torch

#: Frames per block when a stem is read back or mixed.
BLOCK = 1 << 18


class MemoryStems:
    """A sink filling one ``[sources, channels, samples]`` tensor."""

    def __init__(self, sources: list[str], channels: int, length: int) -> None:
        self.sources = sources
        self.data = torch.zeros(len(sources), channels, length)

    def write(self, start: int, block: torch.Tensor) -> None:
        self.data[..., start : start + block.shape[-1]] = block

    def buffer(self) -> torch.Tensor | None:
        return self.data

    def result(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.sources, self.data, strict=True))


class StagedStem:
    """One stem as a raw interleaved float32 file, with the largest absolute sample seen."""

    def __init__(self, path: Path, channels: int) -> None:
        self.path = path
        self.channels = channels
        self.length = 0
        self.peak = torch.zeros(())
        path.write_bytes(b"")

    def append(self, block: torch.Tensor) -> None:
        """Append ``[channels, n]`` samples."""
        # the largest |sample| (what ``wav.abs().max()`` gives), without an abs() copy
        self.peak = torch.maximum(self.peak, torch.linalg.vector_norm(block, float("inf")))
        with self.path.open("ab") as fh:
            _write_frames(fh, block)
        self.length += block.shape[-1]

    def frames(self, size: int = BLOCK) -> Iterator[torch.Tensor]:
        """The samples as ``[n, channels]`` blocks (interleaved, as encoders take them)."""
        with self.path.open("rb") as fh:
            while True:
                data = np.fromfile(fh, dtype="<f4", count=size * self.channels)
                if not data.size:
                    return
                yield torch.from_numpy(data.reshape(-1, self.channels))

    def tensor(self) -> torch.Tensor:
        """The whole stem as ``[channels, samples]`` (for tests and small tracks)."""
        data = np.fromfile(self.path, dtype="<f4").reshape(-1, self.channels)
        return torch.from_numpy(data).t().contiguous()


class StagedStems:
    """A sink appending each source's finished stretches to its own file in ``folder``."""

    def __init__(self, folder: Path, sources: list[str], channels: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stems = {name: StagedStem(folder / f"{name}.f32", channels) for name in sources}
        self.folder = folder
        self._next = 0

    def write(self, start: int, block: torch.Tensor) -> None:
        assert start == self._next, "stretches arrive in order"
        for stem, samples in zip(self.stems.values(), block, strict=True):
            stem.append(samples)
        self._next = start + block.shape[-1]

    def buffer(self) -> torch.Tensor | None:
        return None

    def result(self) -> dict[str, StagedStem]:
        return dict(self.stems)


def mix_staged(stems: Mapping[str, StagedStem], mode: str) -> dict[str, StagedStem]:
    """:func:`worker.separation.mix_stems` for staged stems, block by block (same sums)."""
    if mode == "all":
        return dict(stems)
    rest_name = "instrumental" if mode == "vocals" else f"no_{mode}"
    others = [s for name, s in stems.items() if name != mode]
    first = others[0]
    rest = StagedStem(first.path.with_name(f"{rest_name}.f32"), first.channels)
    readers = [s.frames() for s in others]
    for blocks in zip(*readers, strict=True):
        total = torch.zeros_like(blocks[0])
        for block in blocks:
            total += block
        rest.append(total.t())
    for stem in others:
        stem.path.unlink(missing_ok=True)
    return {mode: stems[mode], rest_name: rest}


def _write_frames(fh: IO[bytes], block: torch.Tensor) -> None:
    frames = np.ascontiguousarray(block.t().numpy(), dtype="<f4")  # interleaved, one copy
    fh.write(frames.data)
