"""Demucs separation, with the numbers of demucs' own Separator/CLI, progress and stop.

Runs in a worker thread (never on the event loop). The numbers equal
``demucs.api.Separator.separate_tensor`` for the same model and settings (same
normalization, segments, weights and de-normalization; see worker.overlap_add), computed with
far less memory. Running out of memory is retried with less at once (fewer segments per pass,
shorter segments, the CPU), then fails with :class:`shared.errors.OutOfMemory`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from demucs.htdemucs import HTDemucs
from demucs.repo import ModelLoadingError

from shared.config import SeparationSettings
from shared.errors import Cancelled, ModelUnavailable, OutOfMemory
from worker.cpu_runtime import Runtime
from worker.memory import is_out_of_memory, memory_cap, release
from worker.models import ModelSource
from worker.overlap_add import Plan, Precision, apply, parts_of, segment_count
from worker.precision import cpu_precision, reduced_precision
from worker.staging import MemoryStems, StagedStem, StagedStems

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


def cpu_threads() -> int:
    """The cores this process may really use: its CPU affinity, and a cgroup CPU quota
    (containers) when there is one; ``os.cpu_count()`` counts the host's cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = cores or os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, -(-int(quota) // int(period))))


class ModelCache:
    """Models loaded once and kept warm; the first one (the default) is never evicted."""

    def __init__(
        self, repo: Path | None, device: str, keep: int = 2, source: ModelSource | None = None
    ) -> None:
        self.repo = repo
        #: where models come from (worker.models): by default ``repo``, else the hub cache
        self.source = source or ModelSource(repo)
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
                model = self.source.load(name)
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


@dataclass(frozen=True)
class Tuning:
    """Per-device knobs of a separation (see the CUDA_* and JOB_MEMORY_MB settings)."""

    #: Segments per forward pass (CUDA; the CPU runs them one at a time, as demucs does).
    batch: int = 1
    #: "fp16"/"bf16": autocast on CUDA; "bf16" on a CPU that computes it natively.
    precision: Precision = "fp32"
    #: On CUDA out-of-memory after the smaller retries, finish on the CPU.
    cpu_fallback: bool = False
    #: CPU: how much memory (MiB) a separation may add to the process; None: no cap.
    job_memory_mb: int | None = None
    #: CPU: what runs each segment's model call (worker.cpu_runtime).
    cpu_runtime: Runtime = "torch"

    @classmethod
    def for_device(cls, settings: SeparationSettings, device: str) -> Tuning:
        if device == "cuda":
            return cls(
                batch=settings.cuda_batch,
                precision=settings.cuda_precision,
                cpu_fallback=settings.oom_cpu_fallback,
            )
        # bf16 only with demucs' own forward: an ONNX export or a compiled core runs fp32
        runtime = settings.cpu_runtime
        precision = cpu_precision(settings.cpu_precision) if runtime == "torch" else "fp32"
        return cls(job_memory_mb=settings.job_memory_mb, cpu_runtime=runtime, precision=precision)


class _Progress:
    """Counts finished segments into one overall percentage; raises Cancelled on request."""

    def __init__(
        self,
        total: int,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.total = max(1, total)
        self.done = 0
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.best = 0.0

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()

    def segment_done(self) -> None:
        self.done += 1
        percent = min(99.9, 100.0 * self.done / self.total)
        if percent > self.best and self.on_progress is not None:
            self.best = percent
            self.on_progress(percent)

    def restart(self, total: int) -> None:
        """A retry counts its own segments; the reported percentage never goes back."""
        self.total, self.done = max(1, total), 0


def attempts(model: Any, device: str, segment: float | None, tuning: Tuning) -> list[Plan]:
    """The out-of-memory ladder: as configured, one segment per pass, a shorter segment,
    then the CPU (when allowed)."""
    runtime = tuning.cpu_runtime if device == "cpu" else "torch"
    plans = [Plan(device, segment, tuning.batch, tuning.precision, runtime)]
    if tuning.batch > 1:
        plans.append(Plan(device, segment, 1, tuning.precision, runtime))
    parts = parts_of(model)
    # HTDemucs pads every segment to the length it was trained on, so a shorter one saves
    # nothing there; the other architectures' memory follows the segment length.
    if not all(isinstance(p, HTDemucs) for p in parts):
        current = segment if segment is not None else min(float(p.segment) for p in parts)
        plans.append(Plan(device, current / 2, 1, tuning.precision, runtime))
    if device != "cpu" and tuning.cpu_fallback:
        plans.append(Plan("cpu", segment, 1, "fp32"))
    return plans


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
    tuning: Tuning | None = None,
) -> dict[str, torch.Tensor]:
    """Separate ``wav`` ([channels, samples] at model.samplerate) into the model's stems.

    Equal to ``demucs.api.Separator.separate_tensor`` for the same settings (see
    worker.overlap_add); out-of-memory is retried down the :func:`attempts` ladder.
    """

    def sink() -> MemoryStems:
        return MemoryStems(list(model.sources), wav.shape[0], wav.shape[-1])

    result = _run_ladder(
        model, wav, sink, shifts, overlap, segment, device, on_progress, should_stop, tuning
    )
    return result.result()


def separate_to_files(
    model: Any,
    wav: torch.Tensor,
    folder: Path,
    *,
    shifts: int,
    overlap: float,
    segment: float | None,
    device: str,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tuning: Tuning | None = None,
) -> dict[str, StagedStem]:
    """:func:`separate`, with each stem written to a raw file in ``folder`` as it is finished
    (the worker's path: the stems never sit in memory all at once)."""

    def sink() -> StagedStems:
        return StagedStems(folder, list(model.sources), wav.shape[0])

    result = _run_ladder(
        model, wav, sink, shifts, overlap, segment, device, on_progress, should_stop, tuning
    )
    return result.result()


S = TypeVar("S", MemoryStems, StagedStems)


def _run_ladder(
    model: Any,
    wav: torch.Tensor,
    make_sink: Callable[[], S],
    shifts: int,
    overlap: float,
    segment: float | None,
    device: str,
    on_progress: Callable[[float], None] | None,
    should_stop: Callable[[], bool] | None,
    tuning: Tuning | None,
) -> S:
    tuning = tuning or Tuning()
    plans = attempts(model, device, segment, tuning)
    length = wav.shape[-1]
    progress = _Progress(0, on_progress, should_stop)
    for number, plan in enumerate(plans, 1):
        progress.restart(segment_count(model, length, shifts, overlap, plan.segment))
        sink: S | None = None
        failure = ""
        try:
            cap = tuning.job_memory_mb if plan.device == "cpu" else None
            with (
                _placed(model, device, plan.device),
                reduced_precision(model, plan.precision, plan.device),
                torch.inference_mode(),
                memory_cap(cap),
            ):
                sink = make_sink()
                apply(
                    model,
                    wav,
                    shifts=shifts,
                    overlap=overlap,
                    plan=plan,
                    sink=sink,
                    progress=progress,
                )
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failure = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        if not failure and sink is not None:
            if on_progress is not None:
                on_progress(100.0)
            return sink
        del sink
        gc.collect()
        release(plan.device)
        if number == len(plans):
            log.error("separation out of memory after %d attempts: %s", number, failure)
            raise OutOfMemory(detail=failure)
        log.warning(
            "separation out of memory (%s): %s; trying %s",
            _describe(plan),
            failure,
            _describe(plans[number]),
        )
    raise AssertionError("unreachable: the ladder always has an attempt")


def _describe(plan: Plan) -> str:
    segment = "the model's segment" if plan.segment is None else f"segment {plan.segment:g} s"
    return f"{plan.device}, {segment}, batch {plan.batch}"


@contextlib.contextmanager
def _placed(model: Any, home: str, device: str) -> Iterator[None]:
    """Run on ``device``; a model borrowed from another device goes back home afterwards."""
    if device == home:
        yield
        return
    model.to(device)
    try:
        yield
    finally:
        model.to(home)


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
