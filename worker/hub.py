"""Demucs weights from the HuggingFace hub, as demucs 4.1 fetches them, verified.

Each model name is its own hub repository (``demucs.hf.hf_repo_name``: ``htdemucs`` is
``adefossez/HTDemucs``, ``htdemucs_ft`` is ``adefossez/HTDemucs-ft``, ...) holding the bag
(``NAME.yaml``) and one ``SIG.safetensors`` per model of the bag. huggingface_hub keeps them
in its cache (``HF_HOME``; ``HF_ENDPOINT`` names a mirror). On top of demucs' own code path:

- the revision is pinned: the bag is fetched at the configured revision (a commit hash, or a
  branch the pull resolves to one) and every model file at the bag's commit; the cache's ref
  keeps that commit until the next pull, so a worker never picks up a changed file;
- every file is hashed whole against the hub's hash of it (the etag: sha256 for the weights,
  git's blob sha1 for the yaml), when pulled and again when a worker loads it;
- workers load from the cache alone (``local_files_only``); only ``stembot models pull``, or a
  worker allowed to download a model missing from the cache, talks to the hub;
- only safetensors are fetched, and they are read by :mod:`worker.weights`, which builds
  nothing but Demucs' own model classes: a hub file cannot run code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from demucs.apply import BagOfModels
from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
from demucs.repo import ModelLoadingError
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from worker.weights import WeightsRefused, load_safetensors_model, verify

SIGNATURE = re.compile(r"[0-9A-Za-z_]{1,64}")


class HubError(ModelLoadingError):
    """A one-line reason a model could not be fetched from, or found in, the hub cache."""


class NotCached(HubError):
    """The model is not in the cache (and this process may not download it)."""


def repo_id(name: str) -> str:
    return f"{DEFAULT_NAMESPACE}/{hf_repo_name(name)}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Hub:
    """Where and at which revisions models are fetched; ``cache_dir`` None: HF_HOME's."""

    def __init__(
        self,
        revisions: dict[str, str] | None = None,
        *,
        endpoint: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.revisions = revisions or {}
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.cache_dir = cache_dir

    @property
    def cache(self) -> str:
        return str(self.cache_dir or constants.HF_HUB_CACHE)

    def revision(self, name: str) -> str:
        return self.revisions.get(name, "main")

    # --- the worker's side: the cache only ----------------------------------------------

    def load(self, name: str) -> BagOfModels:
        """The bag ``name`` from the cache, every file hashed; NotCached when absent."""
        bag_path = self._cached(name, f"{name}.yaml", self.revision(name))
        commit = bag_path.parent.name
        models = [
            load_safetensors_model(
                self._cached(name, f"{sig}.safetensors", commit),
                f"{repo_id(name)}/{sig}.safetensors",
            )
            for sig in self._signatures(name, bag_path)
        ]
        bag = yaml.safe_load(bag_path.read_text())
        return BagOfModels(models, bag.get("weights"), bag.get("segment"))

    def _cached(self, name: str, filename: str, revision: str) -> Path:
        try:
            found = hf_hub_download(
                repo_id(name),
                filename,
                revision=revision,
                cache_dir=self.cache_dir,
                local_files_only=True,
            )
        except (LocalEntryNotFoundError, OfflineModeIsEnabled):
            raise NotCached(
                f"{name} is not in the model cache {self.cache}: "
                f"`stembot models pull {name}` fetches it"
            ) from None
        path = Path(found)
        verify(path, _etag(path), f"{repo_id(name)}/{filename} in {self.cache}")
        return path

    def _signatures(self, name: str, bag_path: Path) -> list[str]:
        try:
            bag = yaml.safe_load(bag_path.read_text())
            sigs = bag["models"]
        except (yaml.YAMLError, TypeError, KeyError):
            raise HubError(f"{repo_id(name)}/{name}.yaml is not a Demucs bag") from None
        if not isinstance(sigs, list) or not all(
            isinstance(s, str) and SIGNATURE.fullmatch(s) for s in sigs
        ):
            raise HubError(f"{repo_id(name)}/{name}.yaml lists invalid model names")
        return sigs

    # --- `stembot models pull`: the network ---------------------------------------------

    def pull(self, name: str, report: Callable[[str], None]) -> str:
        """Fetch the bag ``name`` into the cache, verified; returns its commit hash."""
        rid = repo_id(name)
        bag_path = self._download(name, f"{name}.yaml", self.revision(name), report)
        commit = bag_path.parent.name
        for sig in self._signatures(name, bag_path):
            self._download(name, f"{sig}.safetensors", commit, report)
        report(f"{name}: ready ({rid} at {commit[:12]}, in {self.cache})")
        return commit

    def _download(
        self, name: str, filename: str, revision: str, report: Callable[[str], None]
    ) -> Path:
        rid = repo_id(name)
        label = f"{rid}/{filename}"
        cached = try_to_load_from_cache(rid, filename, cache_dir=self.cache_dir, revision=revision)
        was_there = isinstance(cached, str)
        for attempt in (1, 2):
            path = Path(self._fetch(rid, filename, revision, force=attempt == 2))
            try:
                verify(path, _etag(path), label)
            except WeightsRefused as exc:
                _remove(path)
                if not was_there or attempt == 2:
                    raise HubError(f"{exc} at {path.parent.name[:12]}: removed") from None
                report(f"{name}: {filename} in the cache is damaged, fetching it again")
                was_there = False
                continue
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            if was_there:
                report(f"{name}: {filename} already present, hash ok ({size})")
            else:
                report(f"{name}: {filename} downloaded, hash ok ({size})")
            return path
        raise AssertionError("unreachable")

    def _fetch(self, rid: str, filename: str, revision: str, *, force: bool) -> str:
        try:
            return str(
                hf_hub_download(
                    rid,
                    filename,
                    revision=revision,
                    cache_dir=self.cache_dir,
                    endpoint=self.endpoint,
                    force_download=force,
                )
            )
        except RevisionNotFoundError:
            raise HubError(f"{rid} has no revision {revision!r} on {self.endpoint}") from None
        except RemoteEntryNotFoundError:
            raise HubError(
                f"{rid} at {revision} has no file {filename} on {self.endpoint}"
            ) from None
        except RepositoryNotFoundError:
            raise HubError(f"no repository {rid} on {self.endpoint}") from None
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise HubError(f"{self.endpoint} answered HTTP {status} for {rid}/{filename}") from None
        except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
            cause = exc.__cause__ or exc
            raise HubError(
                f"cannot reach the model hub {self.endpoint} ({_one_line(cause)}): no network?"
            ) from None
        except (OSError, ValueError) as exc:  # e.g. a server that is not a hub (no commit header)
            raise HubError(f"{rid}/{filename} from {self.endpoint}: {_one_line(exc)}") from None


def _etag(path: Path) -> str:
    """The hub's hash of a cached file: its blob's name (huggingface_hub names blobs so)."""
    return Path(os.path.realpath(path)).name


def _remove(path: Path) -> None:
    """Drop a bad file from the cache: the blob and the snapshot's link to it."""
    Path(os.path.realpath(path)).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def load_bag(hub: Hub, name: str, *, offline: bool, report: Callable[[str], None]) -> Any:
    """The worker's way: from the cache; when absent and not ``offline``, pulled first."""
    try:
        return hub.load(name)
    except NotCached:
        if offline:
            raise
    hub.pull(name, report)
    return hub.load(name)
