"""Where the workers' models come from, and `stembot models pull --legacy`.

:class:`ModelSource` loads a model by name: from ``STEMBOT_MODEL_REPO``, a local folder the
operator gives (trusted, pickled ``.th`` included), or else from the HuggingFace hub's cache
(:mod:`worker.hub`: safetensors only, hashed, pinned). A pickle runs code when it is loaded, so
pickles that were downloaded are refused unless ``STEMBOT_ALLOW_PICKLED_WEIGHTS`` is set: both
the legacy pull below and the loading of what it downloaded (it lists them in the folder's
``.stembot-downloaded``).

Legacy pull: demucs' old download site, into a local model folder the workers load.

The folder is in demucs' own local format (``NAME.yaml`` bags + ``SIG-CHECKSUM.th`` models),
which ``get_model(name, repo=folder)`` loads, i.e. what ``STEMBOT_MODEL_REPO`` points at.
What a name needs comes from demucs' catalog, shipped in its package
(``demucs/remote``: ``files.txt`` lists each model file under its download root, a
``NAME.yaml`` per bag lists its models), parsed by demucs' own parser. Files come from
``STEMBOT_MODEL_BASE_URL`` (demucs' download site, or a mirror with its layout) and are
checked as demucs checks them: the sha256 of the file must start with the checksum in its
name. A file already there with a good checksum is not fetched again; a download goes to a
``.part`` file that only a verified download replaces the real name with, and a bag's yaml is
written after its models, so a worker never sees half a model.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import yaml
from demucs import pretrained
from demucs.pretrained import get_model
from demucs.repo import ModelLoadingError, check_checksum

from shared.config import SeparationSettings
from shared.models import MODELS
from worker.hub import Hub, load_bag
from worker.weights import WeightsRefused

CHUNK = 1 << 20
#: In a model folder: the pickles `models pull --legacy` downloaded, one file name a line.
DOWNLOADED = ".stembot-downloaded"
PICKLES_REFUSED = (
    "pickled weights (.th) from a download run code when loaded: refused "
    "(STEMBOT_ALLOW_PICKLED_WEIGHTS=true allows them; `stembot models pull` without --legacy "
    "fetches safetensors from the HuggingFace hub)"
)
log = logging.getLogger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=60)


class PullError(Exception):
    """A one-line reason a pull failed."""


@dataclass(frozen=True)
class ModelFile:
    """One model of a bag: ``path`` is relative to the download root."""

    sig: str
    path: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def checksum(self) -> str:
        return Path(self.filename).stem.rsplit("-", 1)[1]


@dataclass(frozen=True)
class Catalog:
    """What each model name needs, from a folder in demucs' ``remote`` format."""

    bags: dict[str, Path]
    files: dict[str, ModelFile]

    @classmethod
    def load(cls, folder: Path | None = None) -> Catalog:
        folder = folder or pretrained.REMOTE_ROOT
        urls = pretrained._parse_remote_files(folder / "files.txt")
        files = {
            sig: ModelFile(sig, url.removeprefix(pretrained.ROOT_URL)) for sig, url in urls.items()
        }
        return cls({p.stem: p for p in sorted(folder.glob("*.yaml"))}, files)

    def plan(self, name: str) -> list[ModelFile]:
        """The model files of the bag ``name``; PullError for an unknown name."""
        if name not in self.bags:
            known = [m for m in MODELS if m in self.bags] or sorted(self.bags)
            raise PullError(f"unknown model {name!r} (known: {', '.join(known)})")
        bag = yaml.safe_load(self.bags[name].read_text())
        try:
            return [self.files[sig] for sig in bag["models"]]
        except KeyError as exc:
            raise PullError(f"the catalog lists no file for {name}'s model {exc}") from None


class Progress:
    """Progress on a terminal (one redrawn line per file), else a line per finished file."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = 0.0

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def bytes(self, label: str, done: int, total: int | None) -> None:
        if not self.tty or time.monotonic() - self._last < 0.2:
            return
        self._last = time.monotonic()
        if total:
            width = 30
            filled = width * done // total
            bar = "#" * filled + "." * (width - filled)
            text = f"{label}  [{bar}] {100 * done / total:5.1f}%  {_mb(done)}/{_mb(total)}"
        else:
            text = f"{label}  {_mb(done)}"
        print(f"\r{text}\033[K", end="", file=self.out, flush=True)

    def end_bytes(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=self.out, flush=True)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


async def pull(
    names: list[str],
    repo: Path,
    base_url: str,
    *,
    catalog: Catalog | None = None,
    out: TextIO = sys.stderr,
    allow_pickled: bool = False,
) -> None:
    """Make ``repo`` hold every model in ``names``; PullError with a one-line reason."""
    if not allow_pickled:
        raise PullError(PICKLES_REFUSED)
    catalog = catalog or Catalog.load()
    plans = {name: catalog.plan(name) for name in dict.fromkeys(names)}  # all known first
    progress = Progress(out)
    repo.mkdir(parents=True, exist_ok=True)
    # trust_env: HTTPS_PROXY / NO_PROXY apply, as they do to demucs' own downloads
    async with aiohttp.ClientSession(timeout=TIMEOUT, trust_env=True) as http:
        for name, files in plans.items():
            for model in files:
                await _fetch(http, base_url, repo, name, model, progress)
            await asyncio.to_thread(_write_bag, catalog.bags[name], repo / f"{name}.yaml")
            progress.line(f"{name}: ready in {repo}")


async def _fetch(
    http: aiohttp.ClientSession,
    base_url: str,
    repo: Path,
    name: str,
    model: ModelFile,
    progress: Progress,
) -> None:
    dest = repo / model.filename
    others = [p.name for p in repo.glob(f"{model.sig}*.th") if p.name != model.filename]
    if others:  # demucs refuses a folder with two files for one signature
        raise PullError(
            f"{repo} already has {others[0]} for {name}'s model {model.sig}: remove it first"
        )
    if dest.is_file():
        try:
            await asyncio.to_thread(check_checksum, dest, model.checksum)
        except ModelLoadingError:
            progress.line(f"{name}: {model.filename} is damaged, fetching it again")
        else:
            progress.line(f"{name}: {model.filename} already present")
            return
    url = base_url + model.path
    part = dest.with_name(f".{model.filename}.{secrets.token_hex(4)}.part")
    try:
        digest = await _download(http, url, part, lambda d, t: progress.bytes(model.filename, d, t))
        progress.end_bytes()
        if not digest.startswith(model.checksum):
            raise PullError(
                f"{model.filename} from {url} failed its checksum (sha256 {digest[:16]}..., "
                f"expected {model.checksum}...): nothing was kept"
            )
        os.replace(part, dest)
        if model.filename not in downloaded_pickles(repo):
            with (repo / DOWNLOADED).open("a") as fh:
                fh.write(model.filename + "\n")
    finally:
        part.unlink(missing_ok=True)
    progress.line(f"{name}: {model.filename} downloaded, checksum ok ({_mb(dest.stat().st_size)})")


async def _download(
    http: aiohttp.ClientSession, url: str, part: Path, report: Callable[[int, int | None], None]
) -> str:
    """Stream ``url`` into ``part``; returns the sha256 of what was written."""
    sha = hashlib.sha256()
    try:
        async with http.get(url) as resp:
            if resp.status != 200:
                raise PullError(f"{url} answered HTTP {resp.status}")
            total, done = resp.content_length, 0
            fh = await asyncio.to_thread(part.open, "wb")
            try:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    await asyncio.to_thread(fh.write, chunk)
                    sha.update(chunk)
                    done += len(chunk)
                    report(done, total)
            finally:
                await asyncio.to_thread(fh.close)
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or str(exc.os_error)
        raise PullError(f"cannot reach {exc.host}:{exc.port} ({reason}): no network?") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PullError(f"download of {url} failed: {_one_line(exc)}") from None
    return sha.hexdigest()


def _write_bag(src: Path, dest: Path) -> None:
    """Copy the bag's yaml unless the same one is there (atomically: a worker may be reading)."""
    data = src.read_bytes()
    try:
        if dest.read_bytes() == data:
            return
    except OSError:
        pass
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def downloaded_pickles(repo: Path) -> set[str]:
    """The ``.th`` files of ``repo`` that `models pull --legacy` downloaded."""
    try:
        return set((repo / DOWNLOADED).read_text().split())
    except OSError:
        return set()


@dataclass(frozen=True)
class ModelSource:
    """Loads models by name: from ``repo`` (a local folder) or, without one, the hub cache."""

    repo: Path | None = None
    hub: Hub | None = None
    #: never download: load only what `stembot models pull` put in the cache
    offline: bool = False
    allow_pickled: bool = False

    @classmethod
    def from_settings(cls, sep: SeparationSettings) -> ModelSource:
        return cls(
            sep.model_repo,
            Hub(sep.model_revisions),
            offline=sep.model_offline,
            allow_pickled=sep.allow_pickled_weights,
        )

    def load(self, name: str) -> Any:
        """The model or bag ``name``; ModelLoadingError (or OSError) with the reason."""
        if self.repo is None:
            return load_bag(self.hub or Hub(), name, offline=self.offline, report=log.info)
        if not self.allow_pickled:
            self._refuse_downloaded_pickles(name)
        return get_model(name, repo=self.repo)

    def _refuse_downloaded_pickles(self, name: str) -> None:
        assert self.repo is not None
        downloaded = downloaded_pickles(self.repo)
        if not downloaded:
            return
        sigs = [name]
        try:
            bag = yaml.safe_load((self.repo / f"{name}.yaml").read_text())
            sigs += [str(s) for s in bag["models"]]
        except (OSError, yaml.YAMLError, TypeError, KeyError):
            pass  # not a bag: demucs says why when it loads it
        for sig in sigs:
            for path in [self.repo / f"{sig}.th", *self.repo.glob(f"{sig}-*.th")]:
                if path.name in downloaded and path.is_file():
                    raise WeightsRefused(
                        f"{path.name} in {self.repo} was downloaded (`stembot models pull "
                        "--legacy`) and is a pickle, which runs code when loaded: refused "
                        "(STEMBOT_ALLOW_PICKLED_WEIGHTS=true allows it)"
                    )


def no_model_hint(name: str, repo: Path | None, cause: BaseException | None) -> str:
    """The worker's start-up error when its default model cannot be loaded."""
    demo = "`stembot models demo DIR` writes one with random weights, to try the pipeline offline"
    if repo is not None:
        return (
            f"cannot load the default model {name} from {repo}: {cause}; STEMBOT_MODEL_REPO "
            f"must be a local Demucs model folder ({demo}); unset, the workers load models "
            "pulled from the HuggingFace hub"
        )
    return (
        f"cannot load the default model {name}: {cause}; or set STEMBOT_MODEL_REPO to a local "
        f"Demucs model folder ({demo})"
    )
