"""What every storage backend shares: the job layout, safe names, download headers, peaks.

A published job is a folder (LocalStorage) or a key prefix (S3Storage)::

    jobs/<job key>/<file>               stems and the zip of one finished job
    jobs/<job key>/<file>.peaks.json    waveform peaks of a stem, written by the worker
    jobs/<job key>/meta.json            title, expiry, files (read by the web server and cleanup)

Every name that becomes a path component or a key is checked by :func:`check_name`, so no
key or file name from a caller (or a URL) can reach outside the job.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.formatting import download_title

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
META = "meta.json"
#: A stem's waveform peaks live next to it under its name plus this suffix.
PEAKS_SUFFIX = ".peaks.json"
#: Job folders without readable meta, and publish/cleanup leftovers, go after this long.
STALE_S = 3600

#: Media type of a published file, by extension.
CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".zip": "application/zip",
}


@dataclass(frozen=True)
class JobFile:
    """A published file, found for a download."""

    path: Path
    title: str
    stem: str
    expires_at: float


@dataclass(frozen=True)
class ListedFile:
    """One file of a published job, as its results page lists it."""

    #: The stem's name ("vocals"; "all" for the zip).
    stem: str
    filename: str
    size_bytes: int


@dataclass(frozen=True)
class JobListing:
    """A published job: what its meta.json says, with the files that are really there."""

    key: str
    title: str
    expires_at: float
    files: list[ListedFile]


def content_disposition(title: str, stem: str, ext: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 8187).

    "My Song", "vocals", ".mp3" -> ``My Song - vocals.mp3``; the "all" stem is the zip,
    named ``My Song - stems.zip``.
    """
    label = "stems" if stem == "all" else stem
    clean = download_title(title) or "track"
    ascii_title = unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode()
    ascii_title = re.sub(r"\s+", " ", ascii_title.replace("%", "")).strip() or "track"
    fallback = f"{ascii_title} - {label}{ext}"
    name = f"{clean} - {label}{ext}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def check_name(name: str) -> str:
    """A single safe path component ([A-Za-z0-9._-], no separators, no '..'), or ValueError."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"unsafe storage name: {name!r}")
    return name


def file_path(job_key: str, filename: str) -> str:
    """The URL path of a job's file, as signed in its link (unquoted)."""
    return f"/files/{job_key}/{filename}"


def peaks_name(filename: str) -> str:
    """The name of a stem's peaks file, next to it in the job."""
    return check_name(filename + PEAKS_SUFFIX)


def check_publish(
    names: list[str], peaks: Mapping[str, Sequence[float]] | None
) -> dict[str, bytes]:
    """Refuse duplicate or reserved file names, and peaks of files not published; returns
    the peaks files to write (name -> JSON body)."""
    reserved = {META} | {n for n in names if n.endswith(PEAKS_SUFFIX)}
    if len(set(names)) != len(names) or reserved & set(names):
        raise ValueError(f"duplicate or reserved file names: {names}")
    bodies = {}
    for filename, values in (peaks or {}).items():
        if filename not in names:
            raise ValueError(f"peaks of a file not published: {filename!r}")
        bodies[peaks_name(filename)] = encode_peaks(values)
    return bodies


def encode_peaks(peaks: Sequence[float]) -> bytes:
    """``{"peaks": [...]}``; each value a finite number in [0, 1], or ValueError."""
    values = [float(p) for p in peaks]
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
        raise ValueError("peaks must be numbers between 0 and 1")
    return json.dumps({"peaks": values}).encode()


def decode_peaks(raw: bytes) -> list[float] | None:
    """The peaks in a peaks file; None when it is not one."""
    try:
        data: Any = json.loads(raw)
        values = data["peaks"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(values, list) or not all(
        isinstance(p, (int, float)) and not isinstance(p, bool) for p in values
    ):
        return None
    return [float(p) for p in values]
