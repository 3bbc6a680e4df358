"""How numbers and names are written for people: durations, sizes, titles. One home for each
format (the chat texts, the page, the CLI and the errors all use these)."""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

MB = 1024 * 1024
#: Longest title kept from a file name (chat messages, zip entries, file names).
TITLE_MAX = 120


def clock(seconds: float) -> str:
    """A track's length: 3:05."""
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def wait(seconds: float) -> str:
    """A wait, rounded up (never "0 min"): 45 s, 12 min, 3 h, 3 h 20 min."""
    total = max(1, math.ceil(seconds))
    if total < 60:
        return f"{total} s"
    minutes = math.ceil(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def remaining(seconds: float) -> str:
    """A time left, rounded to the minute below: 3 h 20 min, 45 min (0 min at the end)."""
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def eta(seconds: float) -> str:
    """An estimate, seconds while they matter: 40 s, 3 min 20 s, 12 min, 1 h 5 min."""
    total = max(1, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s" if minutes < 10 and sec else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def terse(seconds: float | None) -> str:
    """A terminal's progress line: 45s, 3m05s."""
    total = int(seconds or 0)
    return f"{total // 60}m{total % 60:02d}s" if total >= 60 else f"{total}s"


def megabytes(size: int) -> str:
    """A file's size in MiB as chats show it: 7.1 MB."""
    return f"{size / MB:.1f} MB"


def size(value: int) -> str:
    """A download's size in decimal units: 950 B, 7.1 MB."""
    amount = float(value)
    for unit in ("B", "KB", "MB"):
        if amount < 1000:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


def _visible(text: str) -> str:
    """Control and invisible formatting characters (NUL, bidi overrides...) dropped."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def title_from_filename(filename: str) -> str:
    """The file name without folders and extension, as a title users read: control and
    invisible formatting characters dropped, spaces collapsed, capped."""
    name = Path(filename.replace("\\", "/")).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    title = " ".join(_visible(stem).split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title or "track"


def download_title(title: str) -> str:
    """A title as a download's file name: double quotes, slashes, control and format
    characters (bidi overrides...) become spaces; capped."""
    chars = [
        " " if c in '"/\\' or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in title
    ]
    return re.sub(r"\s+", " ", "".join(chars)).strip()[:TITLE_MAX].strip()
