"""demucs' ``apply_model`` (split, shifts, bags of models), streamed through one output buffer.

``demucs.apply.apply_model`` normalizes the whole mix, pads a shifted copy of it, fills a
``[sources, channels, samples]`` buffer per shift and per model, and then builds new tensors to
average and de-normalize them: for a 10-minute track that is several GB on top of the model.
This module does the same arithmetic, in the same order, per output position:

- each segment's input is normalized when it is cut out of the mix (the same two element-wise
  operations, so the same numbers), with zeros wherever demucs pads;
- segments are overlap-added into a window one segment long; once no later segment reaches a
  position, that stretch is divided by its summed weights and handed on, as demucs' final
  ``out /= sum_weight`` would have computed it;
- a single model with at most one shift (the default) needs no full-length buffer at all: its
  finished stretches are weighted, de-normalized and written to a sink (memory or files) in
  order. Bags of several models or several shifts sum into one full-length buffer (two for a
  bag with several shifts), like demucs, but without its extra copies.

The random shift offsets are drawn from ``random`` at the same points as demucs draws them, so
a seeded run equals demucs' own. On CUDA, several segments can go through the model in one
batch (``Plan.batch``); reduced precision is worker.precision's business, and on the CPU the
model call itself may run through ONNX Runtime or torch.compile (worker.cpu_runtime).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from demucs.apply import BagOfModels
from demucs.htdemucs import HTDemucs
from demucs.utils import center_trim

from worker.cpu_runtime import Runtime, segment_call

Precision = Literal["fp32", "fp16", "bf16"]


class Sink(Protocol):
    """Receives the final ``[sources, channels, n]`` stretches of a separation, in order."""

    def write(self, start: int, block: torch.Tensor) -> None: ...

    def buffer(self) -> torch.Tensor | None:
        """A full-length ``[sources, channels, samples]`` tensor to sum into, if it has one."""
        ...


@dataclass(frozen=True)
class Plan:
    """How to run one attempt: where, how long each segment, how many per forward pass."""

    device: str
    segment: float | None = None
    batch: int = 1
    precision: Precision = "fp32"
    #: CPU: what runs each segment's model call (worker.cpu_runtime); "torch" elsewhere.
    runtime: Runtime = "torch"


def parts_of(model: Any) -> list[Any]:
    return list(model.models) if isinstance(model, BagOfModels) else [model]


def segment_count(
    model: Any, length: int, shifts: int, overlap: float, segment: float | None
) -> int:
    """How many model segments a separation runs (shifted passes may run one more each)."""
    total = 0
    for part in parts_of(model):
        seg = int(part.samplerate * (segment if segment is not None else part.segment))
        stride = int((1 - overlap) * seg)
        total += max(1, shifts) * len(range(0, length, stride))
    return total


class Progress(Protocol):
    """Told before each forward pass (may raise to stop) and after each segment."""

    def check(self) -> None: ...

    def segment_done(self) -> None: ...


def apply(
    model: Any,
    wav: torch.Tensor,
    *,
    shifts: int,
    overlap: float,
    plan: Plan,
    sink: Sink,
    progress: Progress,
) -> None:
    """Separate ``wav`` ``[channels, samples]`` (CPU) into ``sink``, as demucs' Separator does."""
    ref = wav.mean(0)
    mean = ref.mean()
    std = ref.std() + 1e-8
    del ref
    parts = parts_of(model)
    bag = isinstance(model, BagOfModels)
    weights: list[list[float]] | None = model.weights if bag else None
    shape = (len(model.sources), wav.shape[0], wav.shape[-1])
    run = _Runner(wav, mean, std, overlap, plan, progress)

    if len(parts) == 1 and shifts <= 1:
        # One pass makes every position final as it leaves the window: stream it out.
        run.model_pass(parts[0], shifts > 0, _Final(sink, weights, mean, std).write)
        return

    estimates = sink.buffer()
    if estimates is None:
        estimates = torch.zeros(shape)
    totals = [0.0] * shape[0]
    for index, part in enumerate(parts):
        part_weights = weights[index] if weights is not None else None
        if shifts > 1:
            target = estimates if index == 0 else torch.zeros(shape)
            for shift_idx in range(shifts):
                run.model_pass(part, True, _Store(target, assign=shift_idx == 0).write)
            target /= shifts
            _weigh(target, part_weights)
            if index > 0:
                estimates += target
            del target
        else:
            store = _Store(estimates, assign=index == 0, weights=part_weights)
            run.model_pass(part, shifts > 0, store.write)
        for k, w in enumerate(part_weights or []):
            totals[k] += w
    if bag:
        for k in range(shape[0]):
            estimates[k] /= totals[k]
    estimates.mul_(std).add_(mean)
    if sink.buffer() is not estimates:
        step = 1 << 20
        for start in range(0, shape[-1], step):
            sink.write(start, estimates[..., start : start + step])


def _weigh(block: torch.Tensor, weights: list[float] | None) -> None:
    """demucs' ``out[:, k] *= inst_weight`` for a bag's model."""
    for k, w in enumerate(weights or []):
        block[k] *= w


@dataclass
class _Store:
    """Puts one pass' finished stretches into a full-length buffer (first pass: assign)."""

    target: torch.Tensor
    assign: bool
    weights: list[float] | None = None

    def write(self, start: int, block: torch.Tensor) -> None:
        _weigh(block, self.weights)
        end = start + block.shape[-1]
        if self.assign:  # demucs: out = 0. + first, which is first
            self.target[..., start:end] = block
        else:
            self.target[..., start:end] += block


@dataclass
class _Final:
    """A single pass' finished stretches, weighted and de-normalized as demucs ends, to a sink."""

    sink: Sink
    weights: list[list[float]] | None
    mean: torch.Tensor
    std: torch.Tensor

    def write(self, start: int, block: torch.Tensor) -> None:
        if self.weights is not None:  # a bag of one model: weight, then divide by the total
            _weigh(block, self.weights[0])
            for k, w in enumerate(self.weights[0]):
                block[k] /= 0.0 + w
        self.sink.write(start, block.mul_(self.std).add_(self.mean))


class _Runner:
    """Runs the segments of one model over the (lazily normalized) mix."""

    def __init__(
        self,
        wav: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        overlap: float,
        plan: Plan,
        progress: Progress,
    ) -> None:
        self.wav, self.mean, self.std = wav, mean, std
        self.overlap = overlap
        self.plan = plan
        self.device = torch.device(plan.device)
        self.progress = progress

    def model_pass(
        self, model: Any, shifted: bool, emit: Callable[[int, torch.Tensor], None]
    ) -> None:
        """One pass of ``model`` over the mix (randomly shifted as demucs does when
        ``shifted``); finished stretches go to ``emit(start, block)`` in mix coordinates."""
        length = self.wav.shape[-1]
        delay = 0
        if shifted:
            max_shift = int(0.5 * model.samplerate)
            delay = max_shift - random.randint(0, max_shift)  # demucs' draw, same order
        self._split(model, length + delay, delay, emit)

    def _split(
        self, model: Any, length: int, delay: int, emit: Callable[[int, torch.Tensor], None]
    ) -> None:
        """demucs' split loop over a virtual signal of ``length`` samples whose sample ``i`` is
        the normalized mix's sample ``i - delay`` (zero outside the mix)."""
        plan, device = self.plan, self.device
        segment = plan.segment if plan.segment is not None else model.segment
        segment_length = int(model.samplerate * segment)
        stride = int((1 - self.overlap) * segment_length)
        weight = torch.cat(
            [
                torch.arange(1, segment_length // 2 + 1, device=device),
                torch.arange(segment_length - segment_length // 2, 0, -1, device=device),
            ]
        )
        weight = (weight / weight.max()) ** 1.0  # demucs' transition_power
        weight_cpu = weight.to("cpu")  # the overlap-add happens where the mix is, like demucs
        window = _Window(len(model.sources), self.wav.shape[0], segment_length)
        pending: list[tuple[int, int, torch.Tensor]] = []

        def flush_to(position: int) -> None:
            start, block = window.advance(position)
            if block is not None:
                self._emit(start - delay, block, emit)

        def run_pending() -> None:
            self.progress.check()
            batch = pending[0][2] if len(pending) == 1 else torch.cat([x for *_, x in pending])
            outs = self._forward(model, batch)
            for i, (offset, chunk, _) in enumerate(pending):
                chunk_out = center_trim(outs[i : i + 1], chunk)[0]
                flush_to(offset)
                window.add((weight[:chunk] * chunk_out).to("cpu"), weight_cpu[:chunk], chunk)
                self.progress.segment_done()
            pending.clear()

        for offset in range(0, length, stride):
            chunk = min(length - offset, segment_length)
            valid = _valid_length(model, chunk, plan.segment)
            x = self._input(offset - (valid - chunk) // 2 - delay, valid)
            if pending and (len(pending) >= plan.batch or pending[0][2].shape != x.shape):
                run_pending()
            pending.append((offset, chunk, x))
        if pending:
            run_pending()
        flush_to(length)

    def _input(self, start: int, size: int) -> torch.Tensor:
        """Normalized mix samples ``[start, start + size)`` as ``[1, C, size]``, zero outside."""
        wav = self.wav
        x = torch.zeros(1, wav.shape[0], size)
        lo, hi = max(0, start), min(wav.shape[-1], start + size)
        if hi > lo:
            x[0, :, lo - start : hi - start] = (wav[:, lo:hi] - self.mean) / self.std
        return x

    def _forward(self, model: Any, x: torch.Tensor) -> torch.Tensor:
        call = model if self.plan.device != "cpu" else segment_call(model, self.plan.runtime)
        out: torch.Tensor = call(x.to(self.device))
        return out

    @staticmethod
    def _emit(start: int, block: torch.Tensor, emit: Callable[[int, torch.Tensor], None]) -> None:
        if start < 0:  # the shifted pass' lead-in, which demucs cuts off
            block = block[..., -start:]
            start = 0
        if block.shape[-1]:
            emit(start, block)


class _Window:
    """Overlap-add of consecutive segments: one segment long, sliding forward."""

    def __init__(self, sources: int, channels: int, size: int) -> None:
        self.size = size
        self.start = 0
        self.acc = torch.zeros(sources, channels, size)
        self.weights = torch.zeros(size)

    def add(self, product: torch.Tensor, weight: torch.Tensor, length: int) -> None:
        self.acc[..., :length] += product
        self.weights[:length] += weight

    def advance(self, position: int) -> tuple[int, torch.Tensor | None]:
        """Hand out ``[start, position)`` divided by its weights and slide to ``position``."""
        done = position - self.start
        if done <= 0:
            return self.start, None
        assert done <= self.size, "segments must overlap or touch"
        weights = self.weights[:done]
        assert weights.min() > 0
        block = self.acc[..., :done] / weights
        start, keep = self.start, self.size - done
        if keep:  # slide the unfinished part to the front (a copy: the ranges may overlap)
            self.acc[..., :keep] = self.acc[..., done:].clone()
            self.weights[:keep] = self.weights[done:].clone()
        self.acc[..., keep:] = 0
        self.weights[keep:] = 0
        self.start = position
        return start, block


def _valid_length(model: Any, length: int, segment: float | None) -> int:
    """The input length demucs pads a segment to (see ``apply_model``'s last branch)."""
    if isinstance(model, HTDemucs) and segment is not None:
        return int(segment * model.samplerate)
    if hasattr(model, "valid_length"):
        return int(model.valid_length(length))
    return length
