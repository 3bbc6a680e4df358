"""Where uploads and stems live, behind one small interface (S3-compatible storage later).

LocalStorage layout under its root::

    uploads/<name>             bytes a user sent, deleted after the job (or by cleanup)
    jobs/<job key>/<file>      stems and the zip of one finished job
    jobs/<job key>/meta.json   title, expiry, files (read by the web server and cleanup)
    tmp/                       workers' and frontends' scratch space
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from shared.config import Settings
from shared.errors import SourceGone
from shared.links import sign_path
from shared.schemas import StemFile

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
STALE_S = 3600
#: Scratch files older than this belong to no running job (jobs time out well before).
SCRATCH_STALE_S = 6 * 3600


def check_name(name: str) -> str:
    """A single safe path component (no separators, no '..'), or ValueError."""
    if not _SAFE.match(name) or ".." in name:
        raise ValueError(f"unsafe storage name: {name!r}")
    return name


class Storage(Protocol):
    async def save_upload(self, tmp: Path, name: str) -> str: ...
    async def fetch_upload(self, storage_key: str, dest: Path) -> Path: ...
    async def delete(self, storage_key: str) -> None: ...
    async def publish_job(
        self, job_key: str, files: list[tuple[str, Path]], *, title: str, expires_at: float
    ) -> list[StemFile]: ...
    async def fetch_job_file(self, job_key: str, filename: str, dest: Path) -> Path: ...
    def url_for(self, job_key: str, filename: str, expires_at: float) -> str: ...
    async def cleanup(self, now: float | None = None) -> int: ...


class LocalStorage:
    """A folder on a disk (or a volume shared by all processes on one host)."""

    def __init__(self, root: Path, public_url: str, signing_key: bytes, upload_ttl_s: int):
        self.root = root
        self.public_url = public_url.rstrip("/")
        self.signing_key = signing_key
        self.upload_ttl_s = upload_ttl_s
        self.uploads = root / "uploads"
        self.jobs = root / "jobs"
        self.tmp = root / "tmp"
        for folder in (self.uploads, self.jobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)

    # --- uploads ------------------------------------------------------------------------

    def _upload_path(self, storage_key: str) -> Path:
        prefix, _, name = storage_key.partition("/")
        if prefix != "uploads":
            raise ValueError(f"not an upload key: {storage_key!r}")
        return self.uploads / check_name(name)

    async def save_upload(self, tmp: Path, name: str) -> str:
        key = f"uploads/{check_name(name)}"
        await asyncio.to_thread(_move, tmp, self._upload_path(key))
        return key

    async def fetch_upload(self, storage_key: str, dest: Path) -> Path:
        src = self._upload_path(storage_key)
        try:
            await asyncio.to_thread(_link_or_copy, src, dest)
        except FileNotFoundError:
            raise SourceGone() from None
        return dest

    async def delete(self, storage_key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._upload_path(storage_key).unlink)

    # --- finished jobs ------------------------------------------------------------------

    def job_dir(self, job_key: str) -> Path:
        return self.jobs / check_name(job_key)

    def url_for(self, job_key: str, filename: str, expires_at: float) -> str:
        path = f"/files/{check_name(job_key)}/{quote(check_name(filename))}"
        return f"{self.public_url}{path}?{sign_path(self.signing_key, path, int(expires_at))}"

    async def publish_job(
        self, job_key: str, files: list[tuple[str, Path]], *, title: str, expires_at: float
    ) -> list[StemFile]:
        final = self.job_dir(job_key)
        staging = self.tmp / f"publish-{job_key}-{os.getpid()}-{time.monotonic_ns()}"

        def write() -> list[StemFile]:
            staging.mkdir(parents=True)
            stems = []
            for name, path in files:
                target = staging / check_name(path.name)
                _move(path, target)
                stems.append(
                    StemFile(
                        name=name,
                        filename=target.name,
                        size_bytes=target.stat().st_size,
                        url=self.url_for(job_key, target.name, expires_at),
                    )
                )
            meta = {
                "title": title,
                "expires_at": expires_at,
                "files": {s.filename: s.name for s in stems},
            }
            (staging / "meta.json").write_text(json.dumps(meta))
            old = None
            if final.exists():
                old = self.tmp / f"old-{staging.name}"
                final.rename(old)
            staging.rename(final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            return stems

        return await asyncio.to_thread(write)

    def read_meta(self, job_key: str) -> dict[str, object] | None:
        try:
            return json.loads((self.job_dir(job_key) / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    async def fetch_job_file(self, job_key: str, filename: str, dest: Path) -> Path:
        src = self.job_dir(job_key) / check_name(filename)
        try:
            await asyncio.to_thread(shutil.copyfile, src, dest)
        except FileNotFoundError:
            raise SourceGone() from None
        return dest

    # --- expiry -------------------------------------------------------------------------

    async def cleanup(self, now: float | None = None) -> int:
        """Delete expired jobs, uploads older than the link lifetime, stale scratch files."""
        return await asyncio.to_thread(self._cleanup, time.time() if now is None else now)

    def _cleanup(self, now: float) -> int:
        removed = 0
        for job in list(self.jobs.iterdir()):
            meta = self.read_meta(job.name) if _SAFE.match(job.name) else None
            expires = meta.get("expires_at") if meta else None
            if isinstance(expires, (int, float)):
                expired = expires < now
            else:
                expired = _age(job, now) > STALE_S
            if expired:
                shutil.rmtree(job, ignore_errors=True)
                removed += 1
        for path, ttl in [(p, self.upload_ttl_s) for p in self.uploads.iterdir()] + [
            (p, SCRATCH_STALE_S) for p in self.tmp.iterdir()
        ]:
            if _age(path, now) > ttl:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed += 1
        return removed


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _move(src: Path, dest: Path) -> None:
    try:
        os.replace(src, dest)
    except OSError:  # another filesystem
        shutil.copyfile(src, dest)
        src.unlink()


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        if not src.exists():
            raise FileNotFoundError(src) from None
        shutil.copyfile(src, dest)


def build_storage(settings: Settings) -> LocalStorage:
    s = settings.storage
    return LocalStorage(s.storage_dir, s.public_url, s.signing_key_bytes(), s.link_ttl_s)
