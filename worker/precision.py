"""Reduced precision (fp16/bf16) for the parts of a Demucs model where it is safe.

Only the convolution stacks (``encoder``/``decoder``/``tencoder``/``tdecoder``) and the
cross-transformer run under ``torch.autocast``; each hands float32 back, so the STFT, the
inverse STFT, the complex masks and the normalisations stay in float32 (half-precision FFTs
are restricted and lose the most). Swapped in for one separation and out again: the resident
model is shared by every job of the worker. Whether a GPU stays within 0.1 dB SDR of fp32 is
measured by ``make bench`` (bench/gpu.py) on that GPU; the CPU's bf16 (where AMX or AVX-512
BF16 compute it) by ``python -m bench --variants torch,bf16`` against our fp32 path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from worker.overlap_add import Precision, parts_of

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_STACKS = ("encoder", "decoder", "tencoder", "tdecoder")
_BLOCKS = ("crosstransformer",)


class Autocast(nn.Module):
    """Runs ``inner`` under autocast and returns its tensors as float32."""

    def __init__(self, inner: nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            out = self.inner(*args, **kwargs)
        return _as_float(out)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:  # the layer's own attributes (e.g. HEncLayer.empty)
            return getattr(self._modules["inner"], name)


def _as_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, tuple):
        return tuple(_as_float(v) for v in value)
    return value


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16): where it
    only converts, bf16 is slower than fp32."""
    cpu = torch.cpu
    return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())


def cpu_precision(setting: str) -> Precision:
    """The CPU's precision for ``setting`` ("auto": bf16 where native, else fp32)."""
    if setting == "auto":
        return "bf16" if native_bf16() else "fp32"
    return "bf16" if setting == "bf16" else "fp32"


@contextlib.contextmanager
def reduced_precision(model: Any, precision: str, device: str) -> Iterator[None]:
    """Inside the block, ``model``'s convolution stacks and transformer run in ``precision``
    ("fp32": nothing changes)."""
    dtype = DTYPES.get(precision)
    if dtype is None:
        yield
        return
    device_type = torch.device(device).type
    undo: list[tuple[Any, str | int, nn.Module]] = []
    try:
        for part in parts_of(model):
            for name in _STACKS:
                stack = getattr(part, name, None)
                if isinstance(stack, nn.ModuleList):
                    for i, layer in enumerate(stack):
                        stack[i] = Autocast(layer, device_type, dtype)
                        undo.append((stack, i, layer))
            for name in _BLOCKS:
                block = getattr(part, name, None)
                if isinstance(block, nn.Module):
                    setattr(part, name, Autocast(block, device_type, dtype))
                    undo.append((part, name, block))
        yield
    finally:
        for owner, key, original in reversed(undo):
            if isinstance(key, int):
                owner[key] = original
            else:
                setattr(owner, key, original)
