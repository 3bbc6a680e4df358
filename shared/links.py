"""HMAC-signed, expiring links. The signature covers the path, so a link opens one file."""

from __future__ import annotations

import hashlib
import hmac
import time
from enum import Enum
from urllib.parse import urlencode


class LinkCheck(Enum):
    OK = "ok"
    EXPIRED = "expired"
    INVALID = "invalid"


def _signature(key: bytes, path: str, expires_at: int) -> str:
    return hmac.new(key, f"{path}\n{expires_at}".encode(), hashlib.sha256).hexdigest()


def sign_path(key: bytes, path: str, expires_at: int) -> str:
    """The query string (``exp=...&sig=...``) that makes ``path`` downloadable until then."""
    return urlencode({"exp": expires_at, "sig": _signature(key, path, expires_at)})


def verify(
    key: bytes, path: str, exp: str | None, sig: str | None, now: float | None = None
) -> LinkCheck:
    if not exp or not sig or not exp.isdigit() or len(exp) > 12:
        return LinkCheck.INVALID
    expected = _signature(key, path, int(exp))
    if not hmac.compare_digest(expected, sig):
        return LinkCheck.INVALID
    if int(exp) < (time.time() if now is None else now):
        return LinkCheck.EXPIRED
    return LinkCheck.OK
