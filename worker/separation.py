"""Demucs separation, exactly as demucs' own Separator/CLI does it, with progress and stop.

Runs in a worker thread (never on the event loop). The numbers equal
``demucs.api.Separator.separate_tensor`` for the same model and settings: same normalization
by the mono reference's mean/std, same ``apply_model`` call, same de-normalization.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from demucs.apply import BagOfModels, apply_model
from demucs.pretrained import get_model
from demucs.repo import ModelLoadingError

from shared.errors import Cancelled, ModelUnavailable

log = logging.getLogger(__name__)


def pick_device(setting: str) -> str:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is a start-up error."""
    if setting == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if setting == "cuda":
        raise RuntimeError("STEMBOT_DEVICE=cuda but no CUDA GPU is available to torch")
    return "cpu"


class ModelCache:
    """Models loaded once and kept warm; the first one (the default) is never evicted."""

    def __init__(self, repo: Path | None, device: str, keep: int = 2) -> None:
        self.repo = repo
        self.device = device
        self.keep = keep
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._pinned: str | None = None
        self._lock = threading.Lock()

    def preload(self, name: str) -> None:
        self.get(name)

    def get(self, name: str) -> Any:
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            if self.repo is not None and not self.repo.is_dir():
                log.error("model folder %s does not exist", self.repo)
                raise ModelUnavailable(name) from FileNotFoundError(f"no folder {self.repo}")
            try:
                model = get_model(name, repo=self.repo)
            except (ModelLoadingError, OSError, SystemExit, ValueError) as exc:
                # OSError covers the hub being unreachable (URLError, ConnectionError);
                # demucs' fatal() raises SystemExit for a missing repo folder
                log.error("cannot load model %s: %s", name, exc)
                raise ModelUnavailable(name) from exc
            model.to(self.device)
            model.eval()
            self._models[name] = model
            if self._pinned is None:
                self._pinned = name
            self._evict()
            return model

    def _evict(self) -> None:
        while len(self._models) > self.keep + 1:
            victim = next(n for n in self._models if n != self._pinned)
            del self._models[victim]


class _Progress:
    """Turns apply_model's per-segment callbacks into one overall percentage."""

    def __init__(
        self,
        model: Any,
        length: int,
        shifts: int,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.models = len(model.models) if isinstance(model, BagOfModels) else 1
        self.passes = self.models * max(1, shifts)
        self.length = max(1, length)
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.best = 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()
        if info.get("state") != "end" or self.on_progress is None:
            return
        done_pass = info.get("model_idx_in_bag", 0) * max(1, self.passes // self.models)
        done_pass += info.get("shift_idx", 0)
        within = min(1.0, (info.get("segment_offset", 0) + self._stride(info)) / self.length)
        percent = 100.0 * (done_pass + within) / self.passes
        if percent > self.best:
            self.best = percent
            self.on_progress(min(percent, 100.0))

    def _stride(self, info: dict[str, Any]) -> int:
        return int(info.get("stride", 0))


def separate(
    model: Any,
    wav: torch.Tensor,
    *,
    shifts: int,
    overlap: float,
    segment: float | None,
    device: str,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, torch.Tensor]:
    """Separate ``wav`` ([channels, samples] at model.samplerate) into the model's stems."""
    length = wav.shape[-1]
    progress = _Progress(model, length, shifts, on_progress, should_stop)
    parts = model.models if isinstance(model, BagOfModels) else [model]
    segment_s = float(segment or min(float(m.segment) for m in parts))  # type: ignore[arg-type]
    stride = int((1 - overlap) * int(model.samplerate * segment_s))
    with torch.inference_mode():
        ref = wav.mean(0)
        mean = ref.mean()
        std = ref.std() + 1e-8
        out = apply_model(
            model,
            ((wav - mean) / std)[None],
            segment=segment,
            shifts=shifts,
            split=True,
            overlap=overlap,
            device=device,
            num_workers=0,
            callback=progress,
            callback_arg={"audio_length": length, "stride": stride},
            progress=False,
        )
        out = out * std + mean
    if on_progress is not None:
        on_progress(100.0)
    return dict(zip(model.sources, out[0], strict=True))


def mix_stems(stems: dict[str, torch.Tensor], mode: str) -> dict[str, torch.Tensor]:
    """``all``: every stem; a stem name: that stem plus the others summed (karaoke mode).

    The sum is what the demucs CLI writes for ``--two-stems STEM`` (``--other-method add``).
    """
    if mode == "all":
        return dict(stems)
    rest_name = "instrumental" if mode == "vocals" else f"no_{mode}"
    others = [t for name, t in stems.items() if name != mode]
    rest = torch.zeros_like(others[0])
    for t in others:
        rest += t
    return {mode: stems[mode], rest_name: rest}
