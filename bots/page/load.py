"""What a results page shows: the published job from storage, its options from Redis, and
the waveform peaks the worker stored with each stem (read only: nothing is decoded here)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import quote

from redis.asyncio import Redis

from shared import jobs
from shared.links import sign_path
from shared.music import Analysis
from shared.schemas import JobResult
from shared.storage import Storage, file_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stem:
    name: str
    filename: str
    size_bytes: int
    url: str


@dataclass(frozen=True)
class PageJob:
    key: str
    #: "" when the job has none (the page shows "Untitled" in its language)
    title: str
    expires_at: float
    stems: list[Stem]
    zip: Stem | None
    #: From the JobResult in Redis; None when the server has no Redis or the entry is gone.
    model: str | None = None
    stems_mode: str | None = None
    format: str | None = None
    duration_s: float | None = None
    #: The song's key and tempo (shared.music), from the JobResult like the options.
    analysis: Analysis | None = None


def relative_url(signing_key: bytes, job_key: str, filename: str, expires_at: float) -> str:
    """A signed download link on this server (same origin as the page: the mixer fetches it)."""
    query = sign_path(signing_key, file_path(job_key, filename), int(expires_at))
    return f"/files/{job_key}/{quote(filename)}?{query}"


async def load_job(storage: Storage, redis: Redis | None, job_key: str) -> PageJob | None:
    """The published job, with the options from Redis when known; None when it is gone."""
    listing = await storage.load_job(job_key)
    if listing is None:
        return None
    result = await _result(redis, job_key)
    stems: list[Stem] = []
    zip_file: Stem | None = None
    for file in listing.files:
        url = relative_url(storage.signing_key, job_key, file.filename, listing.expires_at)
        stem = Stem(file.stem, file.filename, file.size_bytes, url)
        if file.stem == "all":
            zip_file = stem
        else:
            stems.append(stem)
    return PageJob(
        key=job_key,
        title=listing.title,
        expires_at=listing.expires_at,
        stems=stems,
        zip=zip_file,
        model=result.model if result else None,
        stems_mode=result.stems_mode if result else None,
        format=result.format.value if result else _guess_format(stems),
        duration_s=result.duration_s if result else None,
        analysis=result.analysis if result else None,
    )


async def load_peaks(storage: Storage, job: PageJob) -> list[list[float] | None]:
    """Each stem's peaks as the worker stored them; None for a stem without (an older job)."""

    async def one(stem: Stem) -> list[float] | None:
        try:
            return await storage.read_peaks(job.key, stem.filename)
        except Exception:
            log.warning("no waveform peaks for %s/%s", job.key, stem.filename, exc_info=True)
            return None

    return list(await asyncio.gather(*(one(s) for s in job.stems)))


async def _result(redis: Redis | None, job_key: str) -> JobResult | None:
    if redis is None:
        return None
    try:
        raw = await redis.get(jobs.result_key(job_key))
        return JobResult.model_validate_json(raw) if raw else None
    except Exception:
        log.warning("results page: no job result for %s from Redis", job_key, exc_info=True)
        return None


def _guess_format(stems: list[Stem]) -> str | None:
    return stems[0].filename.rpartition(".")[2].lower() if stems else None
