"""LocalStorage: a folder on a disk (one host, or a volume all hosts share).

Layout under its root::

    uploads/<name>             bytes a user sent, deleted after the job (or by cleanup)
    jobs/<job key>/...         published jobs (see shared.storage.base)
    tmp/                       scratch space of workers, frontends and publish_job
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.errors import SourceGone
from shared.links import sign_path
from shared.schemas import StemFile
from shared.storage.base import (
    META,
    SAFE_NAME,
    STALE_S,
    JobFile,
    JobListing,
    ListedFile,
    check_name,
    check_publish,
    decode_peaks,
    file_path,
    peaks_name,
)

#: Other processes' scratch in tmp/ goes after this long (jobs time out well before).
SCRATCH_STALE_S = 6 * 3600
#: Prefixes of the folders LocalStorage itself puts in tmp/ (stale after STALE_S).
_OWN_TMP = ("publish-", "replaced-", "expired-")


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
        """A hard link to the upload when ``dest`` is on the same disk, else a copy."""
        await asyncio.to_thread(_link_or_copy, self._upload_path(storage_key), dest)
        return dest

    async def delete(self, storage_key: str) -> None:
        await asyncio.to_thread(self._upload_path(storage_key).unlink, missing_ok=True)

    # --- finished jobs ------------------------------------------------------------------

    def job_dir(self, job_key: str) -> Path:
        return self.jobs / check_name(job_key)

    def url_for(self, job_key: str, filename: str, expires_at: float) -> str:
        path = file_path(check_name(job_key), check_name(filename))
        query = sign_path(self.signing_key, path, int(expires_at))
        return f"{self.public_url}/files/{job_key}/{quote(filename)}?{query}"

    async def publish_job(
        self,
        job_key: str,
        files: list[tuple[str, Path]],
        *,
        title: str,
        expires_at: float,
        peaks: Mapping[str, Sequence[float]] | None = None,
    ) -> list[StemFile]:
        """Files (and peaks files) are moved into a folder in tmp/, then the folder is
        renamed into place."""
        final = self.job_dir(job_key)
        names = [check_name(path.name) for _, path in files]
        peaks_files = check_publish(names, peaks)
        urls = [self.url_for(job_key, name, expires_at) for name in names]

        def publish() -> list[StemFile]:
            staging = self.tmp / f"publish-{job_key}-{secrets.token_hex(6)}"
            staging.mkdir()
            try:
                stems = []
                for (stem, src), name, url in zip(files, names, urls, strict=True):
                    _move(src, staging / name)
                    size = (staging / name).stat().st_size
                    stems.append(StemFile(name=stem, filename=name, size_bytes=size, url=url))
                for name, body in peaks_files.items():
                    (staging / name).write_bytes(body)
                meta = {
                    "title": title,
                    "expires_at": expires_at,
                    "files": {s.filename: s.name for s in stems},
                }
                (staging / META).write_text(json.dumps(meta))
                self._swap_in(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            return stems

        return await asyncio.to_thread(publish)

    def _swap_in(self, staging: Path, final: Path) -> None:
        """Rename ``staging`` to ``final``, moving an existing ``final`` out of the way.

        A download sees the old folder or the new one, never a half-written one (a request
        landing between the two renames gets a 404); a download already streaming keeps its
        open file. Retried so that two publishers of one key both finish.
        """
        for _ in range(10):
            try:
                os.rename(staging, final)
                return
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
            old = self.tmp / f"replaced-{final.name}-{secrets.token_hex(6)}"
            try:
                os.rename(final, old)
            except FileNotFoundError:
                continue
            shutil.rmtree(old, ignore_errors=True)
        raise OSError(f"could not publish {final.name}: the folder keeps being replaced")

    async def job_exists(self, job_key: str) -> bool:
        return await asyncio.to_thread((self.job_dir(job_key) / META).is_file)

    async def prepare_local(self, job_key: str) -> bool:
        """Make ``job_dir(job_key)`` hold the published job, for serving it; False when
        there is none. Here the files already are there; S3Storage mirrors them."""
        return await self.job_exists(job_key)

    async def find_file(self, job_key: str, filename: str) -> JobFile | None:
        """A regular file listed in the job's meta, or None (also for unsafe names)."""
        try:
            folder = self.job_dir(job_key)
            check_name(filename)
        except ValueError:
            return None

        def find() -> JobFile | None:
            meta = _read_meta(folder)
            files = meta.get("files") if meta else None
            if not meta or not isinstance(files, dict) or filename not in files:
                return None
            path = folder / filename
            if path.is_symlink() or not path.is_file():
                return None
            expires = meta.get("expires_at")
            return JobFile(
                path=path,
                title=str(meta.get("title") or ""),
                stem=str(files[filename]),
                expires_at=float(expires) if isinstance(expires, (int, float)) else 0.0,
            )

        return await asyncio.to_thread(find)

    async def load_job(self, job_key: str) -> JobListing | None:
        """The published job, from its meta.json and the files in its folder."""
        try:
            folder = self.job_dir(job_key)
        except ValueError:
            return None
        if not await self.prepare_local(job_key):
            return None
        return await asyncio.to_thread(_listing, job_key, folder)

    async def read_peaks(self, job_key: str, filename: str) -> list[float] | None:
        """The peaks stored next to the file by its publish; None when there are none."""
        try:
            path = self.job_dir(job_key) / peaks_name(filename)
        except ValueError:
            return None
        try:
            raw = await asyncio.to_thread(_read_regular, path)
        except OSError:
            return None
        return decode_peaks(raw)

    async def fetch_job_file(self, job_key: str, filename: str, dest: Path) -> Path:
        src = self.job_dir(job_key) / check_name(filename)
        try:
            await asyncio.to_thread(shutil.copyfile, src, dest)
        except FileNotFoundError:
            if src.exists():
                raise
            raise SourceGone() from None
        return dest

    # --- expiry -------------------------------------------------------------------------

    async def cleanup(self, now: float | None = None) -> int:
        """Delete expired jobs (and meta-less ones after an hour), uploads older than the
        upload lifetime, and stale scratch in tmp/. Returns the number of items deleted."""
        return await asyncio.to_thread(self._cleanup, time.time() if now is None else now)

    def _cleanup(self, now: float) -> int:
        removed = 0
        for job in list(self.jobs.iterdir()):
            if _job_expired(job, now) and self._remove_job(job, now):
                removed += 1
        for path in list(self.uploads.iterdir()):
            if _age(path, now) > self.upload_ttl_s and _remove(path):
                removed += 1
        for path in list(self.tmp.iterdir()):
            ttl = STALE_S if path.name.startswith(_OWN_TMP) else SCRATCH_STALE_S
            if _age(path, now) > ttl and _remove(path):
                removed += 1
        return removed

    async def delete_job(self, job_key: str) -> bool:
        folder = self.job_dir(job_key)
        # out of jobs/ in one rename (a download sees all of it or nothing), then deleted;
        # an "expired-" leftover in tmp/ is removed by the periodic cleanup
        doomed = self.tmp / f"expired-{folder.name}-{secrets.token_hex(6)}"

        def remove() -> bool:
            try:
                os.rename(folder, doomed)
            except FileNotFoundError:
                return False
            return _remove(doomed)

        return await asyncio.to_thread(remove)

    async def extend_job(self, job_key: str, expires_at: float) -> bool:
        """meta.json rewritten whole (a new file renamed over it). A cleanup that moved the
        folder out of jobs/ to delete it wins: the job is gone (False)."""
        folder = self.job_dir(job_key)

        def extend() -> bool:
            meta = _read_meta(folder)
            if meta is None:
                return False
            old = meta.get("expires_at")
            if isinstance(old, (int, float)) and old >= expires_at:
                return True
            part = folder / f".{META}.part-{secrets.token_hex(4)}"
            try:
                part.write_text(json.dumps({**meta, "expires_at": expires_at}))
                os.replace(part, folder / META)
            except FileNotFoundError:
                return False
            finally:
                part.unlink(missing_ok=True)
            return True

        return await asyncio.to_thread(extend)

    def _remove_job(self, job: Path, now: float) -> bool:
        """Move the folder out of jobs/ first: if a publish replaced it meanwhile, put it back."""
        doomed = self.tmp / f"expired-{job.name}-{secrets.token_hex(6)}"
        try:
            os.rename(job, doomed)
        except FileNotFoundError:
            return False
        meta = _read_meta(doomed)
        expires = meta.get("expires_at") if meta else None
        if isinstance(expires, (int, float)) and expires >= now:
            try:
                os.rename(doomed, job)
                return False
            except OSError:
                pass  # an even newer publish took its place
        return _remove(doomed)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _listing(job_key: str, folder: Path) -> JobListing | None:
    meta = _read_meta(folder)
    files = meta.get("files") if meta else None
    expires = meta.get("expires_at") if meta else None
    if not meta or not isinstance(files, dict) or not isinstance(expires, (int, float)):
        return None
    listed = []
    for filename, stem in files.items():
        try:
            path = folder / check_name(filename)
            if not path.is_symlink() and path.is_file():
                listed.append(ListedFile(str(stem), filename, path.stat().st_size))
        except (OSError, ValueError):
            continue
    title = str(meta.get("title") or "")
    return JobListing(key=job_key, title=title, expires_at=float(expires), files=listed)


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file (never through a symlink)."""
    if path.is_symlink():
        raise FileNotFoundError(path)
    return path.read_bytes()


def _job_expired(job: Path, now: float) -> bool:
    meta = _read_meta(job) if job.is_dir() and SAFE_NAME.fullmatch(job.name) else None
    expires = meta.get("expires_at") if meta else None
    if isinstance(expires, (int, float)):
        return expires < now
    return _age(job, now) > STALE_S


def _age(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def _remove(path: Path) -> bool:
    """Delete a file or folder; True when it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return not os.path.lexists(path)


def _move(src: Path, dest: Path) -> None:
    """Rename; across filesystems, copy to a hidden name next to ``dest`` and rename that."""
    try:
        os.replace(src, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    part = dest.with_name(f".{dest.name}.part-{secrets.token_hex(4)}")
    try:
        shutil.copyfile(src, part)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    src.unlink()


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        dest.unlink(missing_ok=True)
        try:
            os.link(src, dest)
        except FileNotFoundError:
            raise
        except OSError:  # another filesystem, or no hard links there
            shutil.copyfile(src, dest)
    except FileNotFoundError:
        if src.exists():
            raise
        raise SourceGone() from None
