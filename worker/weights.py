"""Loading Demucs weights without running code from the file.

A pickled ``.th`` runs code when unpickled; a safetensors file holds only tensors and JSON
metadata. demucs 4.1's own safetensors loader (``demucs.hf.load_safetensors_model``) still
imports and calls whatever class the metadata names, so this loader takes the same format but
builds only Demucs' own model classes, and resolves a state's ``_class`` entries only to torch
dtypes. The hub's hash of a file (its etag: the sha256 of an LFS file, the git blob sha1 of a
small one) is checked over the whole file before it is read.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from demucs.hf import _decode_json
from demucs.repo import ModelLoadingError
from demucs.states import load_model

#: The classes a model file may ask for: demucs' own architectures.
MODEL_CLASSES = frozenset(
    {"demucs.htdemucs.HTDemucs", "demucs.hdemucs.HDemucs", "demucs.demucs.Demucs"}
)
SHA256 = re.compile(r"[0-9a-f]{64}")
GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
CHUNK = 1 << 20


class WeightsRefused(ModelLoadingError):
    """Weights that would run code, or that fail their hash: not loaded (a one-line reason)."""


def file_hash(path: Path, etag: str) -> str:
    """The hash of ``path`` of the kind ``etag`` is: sha256 (LFS) or git blob sha1."""
    if SHA256.fullmatch(etag):
        digest = hashlib.sha256()
    elif GIT_SHA1.fullmatch(etag):
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {path.stat().st_size}\0".encode())
    else:
        raise WeightsRefused(f"{path.name}: the hub gave no sha256 or git hash for it ({etag!r})")
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, etag: str, label: str) -> None:
    """WeightsRefused unless the whole of ``path`` hashes to ``etag``."""
    got = file_hash(path, etag)
    if got != etag:
        raise WeightsRefused(
            f"{label} failed its hash check (got {got[:16]}..., expected {etag[:16]}...)"
        )


def _class(path: str) -> Any:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _unflatten(node: Any, tensors: dict[str, torch.Tensor], label: str) -> Any:
    """demucs.hf._unflatten_state, with ``_class`` limited to torch dtypes."""
    if not isinstance(node, dict):
        return node
    if "_tensor" in node:
        return tensors[node["_tensor"]]
    if "_dict" in node:
        return {k: _unflatten(v, tensors, label) for k, v in node["_dict"]}
    if "_list" in node:
        return [_unflatten(v, tensors, label) for v in node["_list"]]
    if "_tuple" in node:
        return tuple(_unflatten(v, tensors, label) for v in node["_tuple"])
    if "_class" in node:
        name = str(node["_class"])
        value = getattr(torch, name.removeprefix("torch."), None)
        if not name.startswith("torch.") or not isinstance(value, torch.dtype):
            raise WeightsRefused(f"{label} names {name!r} in its state: refused")
        return value
    raise WeightsRefused(f"{label} has an invalid state entry")


def load_safetensors_model(path: Path, label: str | None = None) -> Any:
    """A Demucs model from a safetensors file in demucs' hub format; WeightsRefused if the file
    asks for anything but a Demucs model class."""
    from safetensors import SafetensorError, safe_open

    label = label or path.name
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError) as exc:
        raise WeightsRefused(f"{label} is not a readable safetensors file ({exc})") from None
    klass = metadata.get("klass")
    if klass not in MODEL_CLASSES:
        raise WeightsRefused(f"{label} asks for class {klass!r}, not a Demucs model: refused")
    try:
        args = _decode_json(json.loads(metadata["args"]))
        kwargs = _decode_json(json.loads(metadata["kwargs"]))
        structure = json.loads(metadata["structure"]) if "structure" in metadata else None
    except (KeyError, ValueError) as exc:
        raise WeightsRefused(f"{label} has unreadable metadata ({exc})") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise WeightsRefused(f"{label} has unreadable metadata (args, kwargs)")
    state = tensors if structure is None else _unflatten(structure, tensors, label)
    package = {"klass": _class(klass), "args": args, "kwargs": kwargs, "state": state}
    return load_model(package)
