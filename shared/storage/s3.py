"""S3-compatible storage: uploads, stems and zips in a bucket, presigned download links.

The bucket holds the same layout as :class:`shared.storage.local.LocalStorage`'s folder, as
keys::

    uploads/<name>                   bytes a user sent, deleted after the job (or by cleanup)
    jobs/<job key>/<file>            stems and the zip (Content-Type and a download name set)
    jobs/<job key>/<file>.peaks.json waveform peaks of a stem, written by the worker
    jobs/<job key>/meta.json         title, expiry, files; written last, so it marks a whole job

The links handed to users are presigned GETs valid until the job expires (SigV4: at most
7 days). ``STORAGE_DIR`` stays local to each host: ``tmp/`` is scratch as before, and
``jobs/`` is the web server's cache of the jobs it serves (the results page reads the peaks
from it, and its player fetches the stems from the same origin), refreshed whenever the
bucket's ``meta.json`` changes.

boto3 is synchronous: every call runs in a thread, as LocalStorage's disk work does. Its
managed transfers split large files into parts and retry.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from shared.config import StorageSettings
from shared.errors import SourceGone
from shared.schemas import StemFile
from shared.storage.base import (
    CONTENT_TYPES,
    META,
    PEAKS_SUFFIX,
    STALE_S,
    JobFile,
    check_name,
    check_publish,
    content_disposition,
    peaks_name,
)
from shared.storage.local import LocalStorage

_MISSING = {"404", "NoSuchKey", "NotFound"}
#: S3 deletes at most this many keys per request.
_DELETE_BATCH = 1000


def s3_clients(settings: StorageSettings) -> tuple[Any, Any]:
    """(client for the processes, client that presigns for users' browsers)."""
    import boto3
    from botocore.config import Config

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    session = boto3.session.Session(
        aws_access_key_id=secret(settings.s3_access_key_id),
        aws_secret_access_key=secret(settings.s3_secret_access_key),
        region_name=settings.s3_region,
    )

    def client(endpoint: str | None) -> Any:
        # custom endpoints (MinIO, R2, ...) take path-style requests; AWS its default
        style = {"addressing_style": "path"} if endpoint else {}
        config = Config(
            signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}, s3=style
        )
        return session.client("s3", endpoint_url=endpoint, config=config)

    main = client(settings.s3_endpoint_url)
    public = settings.s3_public_endpoint_url
    return main, (client(public) if public and public != settings.s3_endpoint_url else main)


def _missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code")
    return str(code) in _MISSING


class S3Storage(LocalStorage):
    """A bucket; ``root`` is this host's scratch and cache folder."""

    def __init__(
        self,
        root: Path,
        public_url: str,
        signing_key: bytes,
        upload_ttl_s: int,
        *,
        bucket: str,
        client: Any,
        presigner: Any = None,
    ) -> None:
        super().__init__(root, public_url, signing_key, upload_ttl_s)
        self.bucket = bucket
        self.client = client
        self.presigner = presigner or client
        self._mirroring: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, cache={str(self.root)!r})"

    # --- keys ---------------------------------------------------------------------------

    @staticmethod
    def _upload_key(storage_key: str) -> str:
        prefix, _, name = storage_key.partition("/")
        if prefix != "uploads":
            raise ValueError(f"not an upload key: {storage_key!r}")
        return f"uploads/{check_name(name)}"

    @staticmethod
    def object_key(job_key: str, filename: str) -> str:
        return f"jobs/{check_name(job_key)}/{check_name(filename)}"

    # --- uploads ------------------------------------------------------------------------

    async def save_upload(self, tmp: Path, name: str) -> str:
        key = f"uploads/{check_name(name)}"
        await asyncio.to_thread(self.client.upload_file, str(tmp), self.bucket, key)
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        return key

    async def fetch_upload(self, storage_key: str, dest: Path) -> Path:
        await asyncio.to_thread(self._download, self._upload_key(storage_key), dest)
        return dest

    async def delete(self, storage_key: str) -> None:
        key = self._upload_key(storage_key)
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    def _download(self, key: str, dest: Path) -> None:
        """Object -> ``dest`` (replaced whole, never half-written); SourceGone when missing."""
        part = dest.with_name(f".{dest.name}.part-{secrets.token_hex(4)}")
        try:
            self.client.download_file(self.bucket, key, str(part))
            os.replace(part, dest)
        except Exception as exc:
            if _missing(exc):
                raise SourceGone() from None
            raise
        finally:
            part.unlink(missing_ok=True)

    # --- finished jobs ------------------------------------------------------------------

    def url_for(self, job_key: str, filename: str, expires_at: float) -> str:
        """A presigned GET, valid until ``expires_at`` (whole seconds)."""
        key = self.object_key(job_key, filename)
        expires_in = max(1, int(expires_at) - int(time.time()))
        url: str = self.presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url

    async def publish_job(
        self,
        job_key: str,
        files: list[tuple[str, Path]],
        *,
        title: str,
        expires_at: float,
        peaks: Mapping[str, Sequence[float]] | None = None,
    ) -> list[StemFile]:
        """Upload the files and peaks, then meta.json; then drop files only the previous job
        had.

        A failed publish deletes what it uploaded that the live job does not list, so the
        live job stays whole. Files of one key are the same song with the same options, so
        a republish overwriting one of them serves equivalent audio.
        """
        check_name(job_key)
        names = [check_name(path.name) for _, path in files]
        peaks_files = check_publish(names, peaks)

        def publish() -> list[StemFile]:
            before = self._meta(job_key)
            live_files = set(before.get("files") or {}) if before else set()
            live = live_files | {name + PEAKS_SUFFIX for name in live_files}
            uploaded: list[str] = []
            try:
                stems = []
                for (stem, src), name in zip(files, names, strict=True):
                    size = src.stat().st_size
                    ext = PurePosixPath(name).suffix.lower()
                    extra = {
                        "ContentType": CONTENT_TYPES.get(ext, "application/octet-stream"),
                        "ContentDisposition": content_disposition(title, stem, ext),
                    }
                    uploaded.append(name)
                    self.client.upload_file(
                        str(src), self.bucket, self.object_key(job_key, name), ExtraArgs=extra
                    )
                    url = self.url_for(job_key, name, expires_at)
                    stems.append(StemFile(name=stem, filename=name, size_bytes=size, url=url))
                for name, body in peaks_files.items():
                    uploaded.append(name)
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self.object_key(job_key, name),
                        Body=body,
                        ContentType="application/json",
                    )
                meta = {
                    "title": title,
                    "expires_at": expires_at,
                    "files": {s.filename: s.name for s in stems},
                }
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.object_key(job_key, META),
                    Body=json.dumps(meta).encode(),
                    ContentType="application/json",
                )
            except BaseException:
                self._delete_keys([self.object_key(job_key, n) for n in uploaded if n not in live])
                raise
            keep = set(names) | set(peaks_files)
            self._delete_keys([self.object_key(job_key, n) for n in sorted(live - keep)])
            for _, src in files:
                src.unlink(missing_ok=True)
            shutil.rmtree(self.job_dir(job_key), ignore_errors=True)  # this host's cache
            return stems

        return await asyncio.to_thread(publish)

    def _meta_bytes(self, job_key: str) -> bytes | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.object_key(job_key, META))
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        body: bytes = reply["Body"].read()
        return body

    def _meta(self, job_key: str) -> dict[str, Any] | None:
        raw = self._meta_bytes(job_key)
        try:
            meta = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return meta if isinstance(meta, dict) else None

    async def job_exists(self, job_key: str) -> bool:
        key = self.object_key(job_key, META)

        def exists() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if _missing(exc):
                    return False
                raise
            return True

        return await asyncio.to_thread(exists)

    async def fetch_job_file(self, job_key: str, filename: str, dest: Path) -> Path:
        await asyncio.to_thread(self._download, self.object_key(job_key, filename), dest)
        return dest

    # --- serving from this host's cache -------------------------------------------------

    async def prepare_local(self, job_key: str) -> bool:
        """Mirror the job into ``job_dir(job_key)`` unless the cached copy is current."""
        check_name(job_key)
        lock = self._mirroring.setdefault(job_key, asyncio.Lock())
        try:
            async with lock:
                return await asyncio.to_thread(self._mirror, job_key)
        finally:
            if not lock.locked() and self._mirroring.get(job_key) is lock:
                del self._mirroring[job_key]

    def _mirror(self, job_key: str) -> bool:
        folder = self.job_dir(job_key)
        raw = self._meta_bytes(job_key)
        if raw is None:
            shutil.rmtree(folder, ignore_errors=True)
            return False
        try:
            if (folder / META).read_bytes() == raw:
                return True
        except OSError:
            pass
        try:
            files = json.loads(raw).get("files")
        except (ValueError, AttributeError):
            return False
        if not isinstance(files, dict):
            return False
        staging = self.tmp / f"publish-{job_key}-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            for name in files:
                try:
                    self._download(self.object_key(job_key, name), staging / check_name(name))
                except (SourceGone, ValueError):
                    continue  # not served: find_file answers 404 for it
                try:
                    peaks = peaks_name(name)
                    self._download(self.object_key(job_key, peaks), staging / peaks)
                except (SourceGone, ValueError):
                    pass  # a job published without peaks: its page draws no waveform
            (staging / META).write_bytes(raw)
            self._swap_in(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True

    async def find_file(self, job_key: str, filename: str) -> JobFile | None:
        """A cached copy of a published file (fetched from the bucket when needed)."""
        try:
            check_name(job_key)
            check_name(filename)
        except ValueError:
            return None
        if filename == META or not await self.prepare_local(job_key):
            return None
        return await super().find_file(job_key, filename)

    async def delete_job(self, job_key: str) -> bool:
        """The job's objects in the bucket, then the web server's local copy."""
        key = _safe(job_key)
        if key is None:
            raise ValueError(f"unsafe job key {job_key!r}")

        def remove() -> bool:
            keys = [item["Key"] for item in self._list(f"jobs/{key}/")]
            self._delete_keys(keys)
            return bool(keys)

        in_bucket = await asyncio.to_thread(remove)
        cached = await super().delete_job(job_key)
        return in_bucket or cached

    # --- expiry -------------------------------------------------------------------------

    async def extend_job(self, job_key: str, expires_at: float) -> bool:
        """meta.json in the bucket rewritten with the later expiry (S3 replaces an object
        whole)."""
        check_name(job_key)

        def extend() -> bool:
            meta = self._meta(job_key)
            if meta is None:
                return False
            old = meta.get("expires_at")
            if isinstance(old, (int, float)) and old >= expires_at:
                return True
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(job_key, META),
                Body=json.dumps({**meta, "expires_at": expires_at}).encode(),
                ContentType="application/json",
            )
            return True

        return await asyncio.to_thread(extend)

    async def cleanup(self, now: float | None = None) -> int:
        """Delete expired jobs and stale uploads from the bucket, then the local cache and
        scratch as LocalStorage does. Returns the number of jobs, uploads and folders gone.

        (A bucket lifecycle rule that expires objects after the link lifetime plus a day
        is a good second line.)"""
        now = time.time() if now is None else now
        removed = await asyncio.to_thread(self._cleanup_bucket, now)
        return removed + await asyncio.to_thread(self._cleanup, now)

    def _cleanup_bucket(self, now: float) -> int:
        removed = 0
        by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in self._list("jobs/"):
            by_job[item["Key"].split("/")[1]].append(item)
        for job_key, items in by_job.items():
            if self._job_expired(job_key, items, now):
                self._delete_keys([item["Key"] for item in items])
                removed += 1
        for item in self._list("uploads/"):
            if now - item["LastModified"].timestamp() > self.upload_ttl_s:
                self._delete_keys([item["Key"]])
                removed += 1
        return removed

    def _job_expired(self, job_key: str, items: list[dict[str, Any]], now: float) -> bool:
        """Expired by its meta; without a readable one, an hour after its last write."""
        has_meta = any(item["Key"].endswith("/" + META) for item in items)
        meta = self._meta(job_key) if has_meta and job_key == _safe(job_key) else None
        expires = meta.get("expires_at") if meta else None
        if isinstance(expires, (int, float)):
            return expires < now
        newest = max(item["LastModified"].timestamp() for item in items)
        return now - newest > STALE_S

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            yield from page.get("Contents", [])

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )


def _safe(name: str) -> str | None:
    try:
        return check_name(name)
    except ValueError:
        return None
