"""Turn what a user sent into a submitted job: the one path every frontend uses for files."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path

from arq.connections import ArqRedis

from shared import jobs
from shared.config import Settings
from shared.errors import ServiceUnavailable
from shared.formatting import title_from_filename
from shared.media import ingest_stream, probe
from shared.schemas import (
    AudioFormat,
    JobOptions,
    JobRequest,
    LimitTicket,
    LocalReply,
    ReplyTarget,
    Source,
    StemMode,
)
from shared.storage import Storage
from shared.youtube import canonical_url, parse_youtube_url

#: A check an upload passes once probed, before it is stored (the gate's daily minutes).
Check = Callable[[Source], Awaitable[None]]


def build_options(
    settings: Settings,
    *,
    model: str | None = None,
    stems: StemMode = "all",
    fmt: AudioFormat | str = AudioFormat.MP3,
) -> JobOptions:
    """The user's choices plus the server's separation parameters (they are part of the key)."""
    sep = settings.separation
    return JobOptions(
        model=model or sep.default_model,
        stems=stems,
        format=AudioFormat(fmt),
        shifts=sep.shifts,
        overlap=sep.overlap,
        segment=sep.segment,
    )


async def submit_upload(
    *,
    redis: ArqRedis,
    storage: Storage,
    settings: Settings,
    chunks: AsyncIterable[bytes],
    filename: str,
    frontend: str,
    user_id: str,
    reply_to: str,
    options: JobOptions,
    reply: ReplyTarget | None = None,
    ticket: LimitTicket | None = None,
    check: Check | None = None,
) -> jobs.Submitted:
    """Stream the upload to disk (size cap enforced while reading), probe it, submit it.

    Raises the shared.errors rejection (TooLarge, EmptyFile, NotAudio, Unreadable, NoDuration,
    TooLong) before anything is queued; nothing of a rejected upload is kept. ``check`` sees
    the probed source before it is stored (the gate's daily minutes) and may refuse it too.
    """
    tmp_dir = settings.storage.storage_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"upload-{secrets.token_hex(8)}"
    request_id = uuid.uuid4().hex
    try:
        sha256, size = await ingest_stream(chunks, tmp, max_bytes=settings.limits.max_upload_bytes)
        info = await probe(tmp, max_duration_s=settings.limits.max_duration_s)
        source = Source(
            kind="upload",
            identity=sha256,
            title=title_from_filename(filename),
            size_bytes=size,
            duration_s=info.duration_s,
        )
        if check is not None:
            await check(source)
        # one stored copy per request: jobs with other options may share the same bytes
        storage_key = await storage.save_upload(tmp, f"{sha256}.{request_id}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    source = source.model_copy(update={"storage_key": storage_key})
    request = JobRequest(
        request_id=request_id,
        frontend=frontend,
        user_id=user_id,
        reply_to=reply_to,
        options=options,
        reply=reply or LocalReply(frontend=frontend),
        ticket=ticket,
        source=source,
    )
    try:
        submitted = await submit_request(redis, settings, request)
    except BaseException:
        await storage.delete(storage_key)
        raise
    if submitted.outcome != "queued":
        # answered from the cache or joined a run that has its own copy of the bytes
        await storage.delete(storage_key)
    return submitted


async def submit_request(
    redis: ArqRedis, settings: Settings, request: JobRequest
) -> jobs.Submitted:
    """Queue a request's run on the server's queues (or answer it from the cache, or join the
    same run in work); ServiceUnavailable while Redis is down."""
    try:
        return await jobs.submit(
            redis,
            request,
            queue_name=settings.redis.queue_name,
            download_queue=settings.redis.download_queue_name,
        )
    except jobs.REDIS_DOWN as exc:  # restarting or unreachable: the user can try again soon
        raise ServiceUnavailable() from exc


async def file_chunks(path: Path, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
    """Read a local file in chunks without blocking the event loop."""
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, chunk_size):
            yield chunk


async def submit_youtube(
    *,
    redis: ArqRedis,
    settings: Settings,
    url: str,
    frontend: str,
    user_id: str,
    reply_to: str,
    options: JobOptions,
    reply: ReplyTarget | None = None,
    ticket: LimitTicket | None = None,
) -> jobs.Submitted:
    """Validate a YouTube link strictly (no network) and submit it; the worker downloads it.

    Raises the shared.errors rejection for anything that is not a single YouTube video
    link (not a URL, other site, playlist/channel, local or internal address...).
    """
    video_id = parse_youtube_url(url)
    source = Source(kind="youtube", identity=video_id, title=video_id, url=canonical_url(video_id))
    request = JobRequest(
        frontend=frontend,
        user_id=user_id,
        reply_to=reply_to,
        options=options,
        reply=reply or LocalReply(frontend=frontend),
        ticket=ticket,
        source=source,
    )
    return await submit_request(redis, settings, request)
