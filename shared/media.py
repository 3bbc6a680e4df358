"""Cheap checks on what a user sent, before anything heavy: size while reading, ffprobe.

Used by the frontends at submit time (so a bad file is rejected at once, before it takes a
queue slot) and by the worker before decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import EmptyFile, NoDuration, NotAudio, TooLarge, TooLong, Unreadable

#: Containers ffprobe "reads" that are never audio (images, text, archives).
_NOT_MEDIA_FORMATS = {"tty", "image2", "png_pipe", "jpeg_pipe", "gif", "webp_pipe", "bmp_pipe"}


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    format_name: str
    has_video: bool


async def probe(path: Path, *, max_duration_s: float, timeout_s: float = 30) -> MediaInfo:
    """ffprobe the file; raise the specific rejection for anything we cannot split."""
    if path.stat().st_size == 0:
        raise EmptyFile()
    proc = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise Unreadable(detail="ffprobe timed out") from None
    if proc.returncode != 0:
        detail = err.decode(errors="replace")[-300:]
        if _looks_like_media(path):
            raise Unreadable(detail=detail)  # a damaged or truncated media file
        raise NotAudio(detail=detail)  # text, documents, anything that is not media at all
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        raise Unreadable(detail="ffprobe output is not JSON") from None
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    if fmt.get("format_name") in _NOT_MEDIA_FORMATS:
        raise NotAudio(detail=f"format {fmt.get('format_name')}")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise NotAudio(detail="no audio stream")
    stream = audio[0]
    duration = _float(stream.get("duration")) or _float(fmt.get("duration"))
    channels = int(stream.get("channels") or 0)
    rate = int(_float(stream.get("sample_rate")) or 0)
    if channels <= 0 or rate <= 0:
        raise Unreadable(detail="audio stream without channels or sample rate")
    if duration is None or duration <= 0:
        raise NoDuration()
    if duration > max_duration_s:
        raise TooLong(duration, int(max_duration_s))
    return MediaInfo(
        duration_s=duration,
        sample_rate=rate,
        channels=channels,
        codec=str(stream.get("codec_name", "")),
        format_name=str(fmt.get("format_name", "")),
        has_video=any(
            s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
            for s in streams
        ),
    )


#: Leading bytes of the media containers users send; anything else that ffprobe cannot read
#: is "not audio" rather than "damaged audio".
_MEDIA_MAGIC = (
    b"ID3",
    b"fLaC",
    b"OggS",
    b"RIFF",
    b"\x1a\x45\xdf\xa3",
    b"FORM",
    b"caff",
    b"#!AMR",
    b"MAC ",
    b"wvpk",
    b"\x30\x26\xb2\x75",
)


def _looks_like_media(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(_MEDIA_MAGIC) or head[4:8] == b"ftyp":
        return True
    # MPEG audio frame sync (mp3/aac ADTS without an ID3 tag)
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result and result not in (float("inf"), float("-inf")) else None


async def ingest_stream(
    chunks: AsyncIterable[bytes], dest: Path, *, max_bytes: int
) -> tuple[str, int]:
    """Write ``chunks`` to ``dest``, hashing as it goes; stop as soon as the cap is passed.

    Returns (sha256 hex, size). On any rejection the partial file is deleted.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with dest.open("wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(max_bytes)
                digest.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
        if size == 0:
            raise EmptyFile()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        raise
    return digest.hexdigest(), size
