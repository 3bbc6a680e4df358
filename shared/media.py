"""Checks on what a user sent, before anything heavy: size while reading, archives, ffprobe,
then one decode without Demucs (real length, damage, silence).

Used by the frontends at submit time (so a bad file is rejected at once, before it takes a
queue slot) and by the worker before decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import (
    Archive,
    EmptyFile,
    NoDuration,
    NotAudio,
    ReferencesOtherFiles,
    TooLarge,
    TooLong,
    TooManyChannels,
    Unreadable,
)

#: The only demuxers ffmpeg may use on a user's bytes: real audio/video containers, each of
#: which reads nothing but the file it is given. Everything else ffmpeg can detect is refused
#: before its header is read (``-format_whitelist``): playlists and manifests (hls, dash, imf),
#: concat scripts, stream descriptions (sdp, rtsp), image sequences, filter graphs, text.
#: (mov's external data references stay off: its ``enable_drefs`` defaults to 0.)
ALLOWED_DEMUXERS = frozenset(
    {
        "aac",
        "ac3",
        "aiff",
        "amr",
        "amrnb",
        "amrwb",
        "ape",
        "asf",
        "au",
        "avi",
        "caf",
        "dsf",
        "dts",
        "dtshd",
        "eac3",
        "flac",
        "flv",
        "matroska",  # matroska,webm
        "mlp",
        "mov",  # mov,mp4,m4a,3gp,3g2,mj2
        "mp3",
        "mpc",
        "mpc8",
        "mpeg",
        "mpegts",
        "ogg",
        "tak",
        "truehd",
        "tta",
        "w64",
        "wav",
        "wv",
    }
)
_FORMAT_WHITELIST = ",".join(sorted(ALLOWED_DEMUXERS))
#: Demuxers that open the files or URLs a file names, or synthesise sound from a script.
_REFERENCING_FORMATS = {
    "concat",
    "dash",
    "ffmetadata",
    "hls",
    "image2",
    "imf",
    "lavfi",
    "mpjpeg",
    "rtp",
    "rtsp",
    "sbg",
    "sdp",
    "webm_dash_manifest",
}
_PROBED = re.compile(rb"Format (\S+) probed with size=")


def input_args(path: Path, demuxer: str | None = None) -> list[str]:
    """ffmpeg/ffprobe input options for a user's file: no protocol but the local file itself
    (nothing it names can be fetched), no demuxer outside ALLOWED_DEMUXERS, and ``demuxer``
    forced when given (the one the probe found: a second look cannot see another format)."""
    args = ["-protocol_whitelist", "file", "-format_whitelist", _FORMAT_WHITELIST]
    if demuxer is not None:
        if demuxer not in ALLOWED_DEMUXERS:
            raise ValueError(f"demuxer {demuxer!r} is not allowed")
        args += ["-f", demuxer]
    return [*args, "-i", f"file:{path}"]


#: Most audio channels we split (7.1 surround). The worker decodes every channel before it
#: mixes them down: 64 channels of 10 minutes would be 6.8 GB of samples in memory.
MAX_CHANNELS = 8
#: A file whose loudest sample is below this (dBFS) is silent: digital silence, a noise floor.
SILENT_DB = -70.0
#: Shorter than this is no sound to split (a header with an absurd sample rate, a click).
MIN_DURATION_S = 0.1
#: A file of which less than this share of what its header promises decodes (and at least
#: 1 s less) is damaged: a chunk of garbage, a file cut short. Not for estimated lengths.
_DAMAGED_RATIO = 0.8
_ESTIMATED = "Estimating duration from bitrate"


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    format_name: str
    has_video: bool
    #: The allowed demuxer ffprobe found: every later ffmpeg call on the file is pinned to it.
    demuxer: str


async def probe(path: Path, *, max_duration_s: float, timeout_s: float = 30) -> MediaInfo:
    """ffprobe the file, then decode it once; raise the specific rejection for anything we
    cannot split.

    The decode (no Demucs, about 0.1 s per minute of audio) is what makes the checks true of
    the samples the worker will get, not of what the header claims: the length (a header can
    claim 1 s for 30 minutes of mp3 frames), damage (a flac that stops after its first second,
    a file in which nothing decodes) and silence.
    """
    if path.stat().st_size == 0:
        raise EmptyFile()
    if _is_archive(path):  # ffmpeg would find the frames of a song stored in a zip
        raise Archive()
    code, out, err = await _run(
        *("ffprobe", "-v", "warning", "-print_format", "json", "-show_format", "-show_streams"),
        *input_args(path),
        timeout_s=timeout_s,
    )
    if code != 0:
        detail = err.decode(errors="replace")[-300:]
        if b"Format not on whitelist" in err:
            await _refuse_format(path, timeout_s=timeout_s)
        if _looks_like_media(path):
            raise Unreadable(detail=detail)  # a damaged or truncated media file
        raise NotAudio(detail=detail)  # text, documents, anything that is not media at all
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        raise Unreadable(detail="ffprobe output is not JSON") from None
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    demuxer = str(fmt.get("format_name", "")).split(",")[0]
    if demuxer not in ALLOWED_DEMUXERS:  # the whitelist already holds; checked once more
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
    if channels > MAX_CHANNELS:
        raise TooManyChannels(channels, MAX_CHANNELS)
    if duration is None or duration <= 0:
        raise NoDuration()
    if duration > max_duration_s:
        # the header may lie this way too: its packets say how long it really is
        real = await _demuxed_duration(path, demuxer)
        if real is None or real > max_duration_s:
            raise TooLong(real or duration, int(max_duration_s))
        duration = real
    estimated = _ESTIMATED in err.decode(errors="replace")
    duration = await _decoded_duration(
        path,
        demuxer,
        duration,
        samples_per_s=rate * channels,
        max_duration_s=max_duration_s,
        trust_header=not estimated,
    )
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
        demuxer=demuxer,
    )


async def _refuse_format(path: Path, *, timeout_s: float) -> None:
    """The file was detected as a format outside the whitelist: raise the rejection that
    says which kind. ffmpeg logs the detected format (at debug level) before it refuses it,
    and the refusal comes before that demuxer reads anything, so this opens nothing either."""
    _, _, err = await _run(
        *("ffprobe", "-v", "debug", *input_args(path)),
        timeout_s=timeout_s,
    )
    found = _PROBED.search(err)
    name = found.group(1).decode(errors="replace") if found else "unknown"
    if name.split(",")[0] in _REFERENCING_FORMATS:
        raise ReferencesOtherFiles(detail=f"format {name}")
    raise NotAudio(detail=f"format {name}")


async def _decoded_duration(
    path: Path,
    demuxer: str,
    header_s: float,
    *,
    samples_per_s: int,
    max_duration_s: float,
    trust_header: bool,
) -> float:
    """Decode the first audio stream (at most a little past the limit): the length of the
    samples that come out (a gap of damaged pages is missing from them, not from the
    timestamps).

    Raises TooLong, Unreadable (nothing or far less than the header promises decodes) or
    NoDuration (silent). ``trust_header`` is False when ffprobe only estimated the length.
    """
    cap = max_duration_s + 2
    code, out, err = await _run(
        *("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "info"),
        *input_args(path, demuxer),
        *("-map", "0:a:0", "-vn", "-sn", "-dn", "-af", "volumedetect", "-t", f"{cap:g}"),
        *("-progress", "pipe:1", "-f", "null", "-"),
        timeout_s=120,
    )
    if code != 0:
        raise Unreadable(detail="decode failed: " + err.decode(errors="replace")[-300:])
    samples = re.search(rb"n_samples: (\d+)", err)  # volumedetect: every channel's samples
    times = re.findall(rb"^out_time_us=(\d+)$", out, re.MULTILINE)
    if samples is not None:
        decoded = int(samples.group(1)) / samples_per_s
    else:
        decoded = int(times[-1]) / 1e6 if times else 0.0
    peak = re.search(rb"max_volume: (-?[\d.]+|-inf) dB", err)
    if decoded <= 0:
        raise Unreadable(detail=f"nothing decodes (the header says {header_s:.1f}s)")
    if decoded < MIN_DURATION_S:
        raise NoDuration(detail=f"{decoded:.3f}s of audio")
    if decoded > max_duration_s + 1:
        # the header said less: the whole file, demuxed (fast), says how long it really is
        raise TooLong(await _demuxed_duration(path, demuxer) or decoded, int(max_duration_s))
    if trust_header and decoded < header_s * _DAMAGED_RATIO and header_s - decoded >= 1:
        raise Unreadable(detail=f"only {decoded:.1f}s of {header_s:.1f}s decode")
    if peak is not None and float(peak.group(1)) < SILENT_DB:
        raise NoDuration(detail=f"silent (peak {peak.group(1).decode()} dB)")
    return decoded


async def _demuxed_duration(path: Path, demuxer: str) -> float | None:
    """The length of the first audio stream from its packets (no decoding), or None."""
    try:
        code, out, _ = await _run(
            *("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "error"),
            *input_args(path, demuxer),
            *("-map", "0:a:0", "-c", "copy", "-progress", "pipe:1", "-f", "null", "-"),
            timeout_s=120,
        )
    except Unreadable:
        return None
    times = re.findall(rb"^out_time_us=(\d+)$", out, re.MULTILINE)
    return int(times[-1]) / 1e6 if code == 0 and times else None


async def _run(*cmd: str, timeout_s: float) -> tuple[int, bytes, bytes]:
    """``cmd``'s exit code and output; killed past ``timeout_s`` or when the request is
    cancelled (an ffmpeg never outlives what it was probing for).

    asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that arrives
    as ffmpeg ends, so a cancelled request went on (`stembot split` with a worker that
    could not start waited for ever).
    """
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        raise Unreadable(detail=f"{cmd[0]} timed out") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out, err


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


#: Leading bytes of archives: zip, gzip, bzip2, xz, zstd, 7z, rar.
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
)


def _is_archive(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(263)
    return head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar"


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
