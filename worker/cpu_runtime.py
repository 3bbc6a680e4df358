"""Faster per-segment model calls for HTDemucs on the CPU, with the same numbers.

HTDemucs' forward is a complex STFT, a normalisation, a real-valued network (the frequency and
time encoders, the cross-transformer, the decoders) and the inverse: masks, iSTFT and
de-normalisation. :func:`forward_with` runs that forward step for step as demucs does, but
hands the real-valued middle (:class:`Core`: fixed shapes, since HTDemucs pads every segment to
its training length) to a runtime:

- ``torch``: the model itself (demucs' own forward; nothing changes);
- ``onnx``: the middle exported once per model to ONNX and run by ONNX Runtime (fp32);
- ``compile``: the middle through ``torch.compile`` (inductor; needs a C compiler).

The STFT, the masks and both normalisations stay in torch, in fp32, whatever runs the middle;
our streamed overlap-add (worker.overlap_add) stays around it. A runtime that cannot be built
for a model (another architecture, ONNX Runtime missing, an export that fails) falls back to
``torch`` with a warning: a worker never fails a job for a speed-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from demucs.apply import BagOfModels
from demucs.htdemucs import HTDemucs
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnx", "compile"]
CoreCall = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class Core(nn.Module):
    """HTDemucs' real-valued middle: normalised spectrogram and waveform in, the decoders'
    outputs (before de-normalisation, masks and iSTFT) out."""

    def __init__(self, model: HTDemucs) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        saved: list[torch.Tensor] = []
        saved_t: list[torch.Tensor] = []
        lengths: list[int] = []
        lengths_t: list[int] = []
        for idx, encode in enumerate(m.encoder):
            lengths.append(x.shape[-1])
            inject = None
            if idx < len(m.tencoder):
                lengths_t.append(xt.shape[-1])
                tenc = m.tencoder[idx]
                xt = tenc(xt)
                if not tenc.empty:
                    saved_t.append(xt)
                else:
                    inject = xt
            x = encode(x, inject)
            if idx == 0 and m.freq_emb is not None:
                frs = torch.arange(x.shape[-2], device=x.device)
                emb = m.freq_emb(frs).t()[None, :, :, None].expand_as(x)
                x = x + m.freq_emb_scale * emb
            saved.append(x)
        if m.crosstransformer:
            if m.bottom_channels:
                f = x.shape[2]
                x = x.flatten(2)
                x = m.channel_upsampler(x)
                x = x.unflatten(2, (f, -1))
                xt = m.channel_upsampler_t(xt)
            x, xt = m.crosstransformer(x, xt)
            if m.bottom_channels:
                f = x.shape[2]
                x = x.flatten(2)
                x = m.channel_downsampler(x)
                x = x.unflatten(2, (f, -1))
                xt = m.channel_downsampler_t(xt)
        for idx, decode in enumerate(m.decoder):
            skip = saved.pop(-1)
            x, pre = decode(x, skip, lengths.pop(-1))
            offset = m.depth - len(m.tdecoder)
            if idx >= offset:
                tdec = m.tdecoder[idx - offset]
                length_t = lengths_t.pop(-1)
                if tdec.empty:
                    xt, _ = tdec(pre[:, :, 0], None, length_t)
                else:
                    xt, _ = tdec(xt, saved_t.pop(-1), length_t)
        return x, xt


def supports(model: Any) -> bool:
    """Whether :func:`forward_with` can split ``model`` (HTDemucs in eval mode, cac, padded
    to its training length: the released htdemucs models)."""
    return (
        isinstance(model, HTDemucs)
        and not model.training
        and model.cac
        and model.use_train_segment
        and not model.bottom_channels  # not in any released model; keep the split simple
        and (not model.crosstransformer or model.crosstransformer.sin_random_shift == 0)
    )


def forward_with(
    model: HTDemucs, mix: torch.Tensor, core: CoreCall, *, draw: bool = False
) -> torch.Tensor:
    """``model(mix)``, with the real-valued middle computed by ``core``: demucs' forward
    (``HTDemucs.forward``, eval branch) line for line around it.

    ``draw``: take the cross-transformer's draw from ``random`` here, for a ``core`` that does
    not (an export: its position shift is fixed at 0, as ``randrange(1)`` always gives), so
    that the shifts demucs draws later in a seeded run stay the same."""
    length = mix.shape[-1]
    training_length = int(model.segment * model.samplerate)
    length_pre_pad = None
    if length < training_length:
        length_pre_pad = length
        mix = F.pad(mix, (0, training_length - length))
    z = model._spec(mix)
    x = model._magnitude(z).to(mix.device)
    B, _, Fq, T = x.shape  # demucs' names
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) / (1e-5 + std)
    xt = mix
    meant = xt.mean(dim=(1, 2), keepdim=True)
    stdt = xt.std(dim=(1, 2), keepdim=True)
    xt = (xt - meant) / (1e-5 + stdt)

    if draw and model.crosstransformer and model.crosstransformer.emb == "sin":
        random.randrange(model.crosstransformer.sin_random_shift + 1)  # = 0, as in demucs
    x, xt = core(x, xt)

    S = len(model.sources)
    x = x.view(B, S, -1, Fq, T)
    x = x * std[:, None] + mean[:, None]
    zout = model._mask(z, x)
    x = model._ispec(zout, training_length)
    xt = xt.view(B, S, -1, training_length)
    xt = xt * stdt[:, None] + meant[:, None]
    x = xt + x
    if length_pre_pad:
        x = x[..., :length_pre_pad]
    return x


def core_shapes(model: HTDemucs, batch: int) -> tuple[torch.Size, torch.Size]:
    """The shapes of :class:`Core`'s two inputs for ``batch`` segments."""
    mix = torch.zeros(batch, model.audio_channels, int(model.segment * model.samplerate))
    with torch.inference_mode():
        x = model._magnitude(model._spec(mix))
    return x.shape, mix.shape


class _Onnx:
    """:class:`Core` exported to ONNX (fp32) and run by an ONNX Runtime session.

    The export (tens of seconds for htdemucs on a small CPU) is kept in ``cache`` under a hash
    of the model's class, arguments and weights, so a restarted worker, or a second worker
    with the same weights, only loads it."""

    def __init__(self, model: HTDemucs, threads: int, cache: Path | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        with tempfile.TemporaryDirectory(prefix="stembot-onnx-") as tmp:
            path = _cached_export(model, cache, Path(tmp))
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )

    def __call__(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, yt = self.session.run(None, {"x": x.contiguous().numpy(), "xt": xt.contiguous().numpy()})
        return torch.from_numpy(y), torch.from_numpy(yt)


def onnx_cache_dir() -> Path:
    """Where exports are kept: ``$XDG_CACHE_HOME/stembot/onnx`` (``~/.cache`` unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stembot" / "onnx"


def model_digest(model: nn.Module) -> str:
    """A hash of what the export depends on: the class, its arguments, every weight."""
    digest = hashlib.sha256()
    digest.update(f"{type(model).__qualname__}|{torch.__version__}|{_EXPORT}".encode())
    digest.update(repr(getattr(model, "_init_args_kwargs", None)).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def _cached_export(model: HTDemucs, cache: Path | None, tmp: Path) -> Path:
    if cache is not None:
        path = cache / f"htdemucs-core-{model_digest(model)}.onnx"
        if path.is_file():
            return path
    target = tmp / "core.onnx"
    _export(model, target)
    if cache is None:
        return target
    try:  # written whole, then renamed: a concurrent worker never reads half a file
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{path.name}.{os.getpid()}"
        shutil.copyfile(target, partial)
        partial.replace(path)
    except OSError as exc:  # a read-only cache: export again next time
        log.warning("cannot keep the ONNX export in %s: %s", cache, exc)
        return target
    return path


_EXPORT = "opset17-torchscript-v1"  # part of the cache key: change it when _export changes


def _export(model: HTDemucs, path: Path) -> None:
    core = Core(model).eval()
    x_shape, xt_shape = core_shapes(model, 1)
    # traced with gradients on, so that nn.MultiheadAttention takes its exportable path (its
    # inference fast path is one fused operator ONNX does not have); the tracer's warnings are
    # about shapes, which the training length fixes here
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            core,
            (torch.zeros(x_shape), torch.zeros(xt_shape)),
            str(path),
            input_names=["x", "xt"],
            output_names=["y", "yt"],
            dynamic_axes={"x": {0: "batch"}, "xt": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


class _Compiled:
    """:class:`Core` through ``torch.compile`` (inductor, static shapes)."""

    def __init__(self, model: HTDemucs) -> None:
        self.fn = torch.compile(Core(model).eval(), dynamic=False)

    def __call__(self, x: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.fn(x, xt)
        return out


_BUILT: dict[Runtime, weakref.WeakKeyDictionary[nn.Module, CoreCall | None]] = {}
_LOCK = threading.Lock()


def prepare(model: Any, runtime: Runtime) -> bool:
    """Build ``runtime``'s middle for every part of ``model`` now (an ONNX export, a
    compilation: tens of seconds for htdemucs), not in the first job; False where a part
    runs demucs' own forward."""
    parts = model.models if isinstance(model, BagOfModels) else [model]
    return all(_core(part, runtime) is not None for part in parts)


def segment_call(model: Any, runtime: Runtime) -> Callable[[torch.Tensor], torch.Tensor]:
    """The per-segment call of one model (a bag's part): ``model`` itself, or the same
    forward with its middle run by ``runtime`` (built on first use, kept with the model)."""
    core = _core(model, runtime) if runtime != "torch" else None
    if core is None:
        return model
    draw = runtime == "onnx"  # a compiled core draws itself (dynamo keeps Python's random)
    return lambda mix: forward_with(model, mix, core, draw=draw)


def _core(model: Any, runtime: Runtime) -> CoreCall | None:
    if runtime == "torch" or not supports(model):
        return None
    with _LOCK:
        built = _BUILT.setdefault(runtime, weakref.WeakKeyDictionary())
        if model not in built:
            started = time.monotonic()
            built[model] = _build(model, runtime)
            if built[model] is not None:
                log.info("cpu runtime %s ready in %.1f s", runtime, time.monotonic() - started)
        return built[model]


def _build(model: HTDemucs, runtime: Runtime) -> CoreCall | None:
    try:
        core: CoreCall = (
            _Onnx(model, torch.get_num_threads(), onnx_cache_dir())
            if runtime == "onnx"
            else _Compiled(model)
        )
        if runtime == "compile":  # compile now (inductor), in the mode the jobs call it in
            x_shape, xt_shape = core_shapes(model, 1)
            with torch.inference_mode():
                core(torch.zeros(x_shape), torch.zeros(xt_shape))
        return core
    except Exception as exc:  # whatever fails, demucs' own forward runs
        log.warning("cpu runtime %s unavailable, running torch: %s", runtime, exc)
        return None
