"""Where uploads and stems live, behind one small interface.

:class:`Storage` is what the worker, the frontends, the web server and the results page use.
Two backends implement it: :class:`~shared.storage.local.LocalStorage` (a folder: one host, or
a volume all hosts share) and :class:`~shared.storage.s3.S3Storage` (an S3-compatible bucket
with presigned links; the folder is then scratch and the web server's cache).
:func:`build_storage` picks one from the settings. The job layout and the names every backend
checks are in :mod:`shared.storage.base`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from shared.config import Settings
from shared.formatting import TITLE_MAX
from shared.schemas import StemFile
from shared.storage.base import (
    CONTENT_TYPES,
    META,
    PEAKS_SUFFIX,
    STALE_S,
    JobFile,
    JobListing,
    ListedFile,
    check_name,
    content_disposition,
    file_path,
    peaks_name,
)
from shared.storage.local import LocalStorage

__all__ = [
    "CONTENT_TYPES",
    "META",
    "PEAKS_SUFFIX",
    "STALE_S",
    "TITLE_MAX",
    "JobFile",
    "JobListing",
    "ListedFile",
    "LocalStorage",
    "Storage",
    "build_storage",
    "check_name",
    "content_disposition",
    "file_path",
    "peaks_name",
]


class Storage(Protocol):
    """Uploads, published jobs (stems, zip, peaks), and what the web server serves of them."""

    @property
    def signing_key(self) -> bytes:
        """The key that signs this deployment's own links (``/files/...``, ``/r/...``)."""
        ...

    # --- uploads ------------------------------------------------------------------------

    async def save_upload(self, tmp: Path, name: str) -> str:
        """Move a local file in; returns its storage key ``uploads/<name>``."""
        ...

    async def fetch_upload(self, storage_key: str, dest: Path) -> Path:
        """A local copy of an upload at ``dest``; SourceGone when it no longer exists."""
        ...

    async def delete(self, storage_key: str) -> None:
        """Remove an upload; nothing happens when it is already gone."""
        ...

    # --- published jobs -----------------------------------------------------------------

    async def publish_job(
        self,
        job_key: str,
        files: list[tuple[str, Path]],
        *,
        title: str,
        expires_at: float,
        peaks: Mapping[str, Sequence[float]] | None = None,
    ) -> list[StemFile]:
        """Move (stem name, local file) pairs in as one job, replacing any earlier one.

        ``peaks`` (by file name) are stored next to their files, part of the same job."""
        ...

    def url_for(self, job_key: str, filename: str, expires_at: float) -> str:
        """The link a user downloads a published file from, valid until ``expires_at``."""
        ...

    async def job_exists(self, job_key: str) -> bool: ...

    async def fetch_job_file(self, job_key: str, filename: str, dest: Path) -> Path:
        """A local copy of a published file; SourceGone when it no longer exists."""
        ...

    async def delete_job(self, job_key: str) -> bool:
        """Remove a job's stems and zip now, before their expiry (/forget); True when there
        were any."""
        ...

    async def extend_job(self, job_key: str, expires_at: float) -> bool:
        """Keep a published job at least until ``expires_at`` (the links already handed out
        keep theirs; a kept master, shared.masters, lives on for new ones); False when there
        is no such job."""
        ...

    # --- serving (web server, results page) ---------------------------------------------

    async def find_file(self, job_key: str, filename: str) -> JobFile | None:
        """A published file as a local path to send, or None (also for unsafe names)."""
        ...

    async def load_job(self, job_key: str) -> JobListing | None:
        """The published job (title, expiry, files there to serve), or None."""
        ...

    async def read_peaks(self, job_key: str, filename: str) -> list[float] | None:
        """The waveform peaks stored with a file, or None (a job published without them).
        Call after :meth:`load_job`, which makes the job readable on this host."""
        ...

    # --- expiry -------------------------------------------------------------------------

    async def cleanup(self, now: float | None = None) -> int:
        """Delete what has expired; returns how many items went."""
        ...


def build_storage(settings: Settings) -> LocalStorage:
    """The storage the settings describe: a folder, or an S3 bucket (``STORAGE_BACKEND``)."""
    s = settings.storage
    if s.storage_backend == "s3":
        from shared.storage.s3 import S3Storage, s3_clients

        client, presigner = s3_clients(s)
        assert s.s3_bucket is not None  # checked by the settings
        return S3Storage(
            s.storage_dir,
            s.public_url,
            s.signing_key_bytes(),
            s.link_ttl_s,
            bucket=s.s3_bucket,
            client=client,
            presigner=presigner,
        )
    return LocalStorage(s.storage_dir, s.public_url, s.signing_key_bytes(), s.link_ttl_s)
