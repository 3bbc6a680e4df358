"""HMAC-signed, expiring links. The signature covers the path, so a link opens one file.

A link is ``<path>?exp=<unix seconds>&sig=<hex HMAC-SHA256 of "<path>\\n<exp>">``. The path
signed is the decoded URL path (``/files/<job key>/<filename>``): the job folder and the file
name are both covered, so a link for one file opens no other file, in this job or another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from enum import Enum
from urllib.parse import urlencode

#: A canonical unix time (no sign, no leading zeros, ASCII digits only, before year 33658).
_EXP = re.compile(r"(?:0|[1-9][0-9]{0,11})")
_SIG = re.compile(r"[0-9a-f]{64}")


class LinkCheck(Enum):
    OK = "ok"
    EXPIRED = "expired"
    #: Missing, malformed or tampered parameters.
    INVALID = "invalid"


def _signature(key: bytes, path: str, expires_at: int) -> str:
    return hmac.new(key, f"{path}\n{expires_at}".encode(), hashlib.sha256).hexdigest()


def sign_path(key: bytes, path: str, expires_at: int) -> str:
    """The query string (``exp=...&sig=...``) that makes ``path`` downloadable until then."""
    expires_at = int(expires_at)
    if expires_at < 0:
        raise ValueError("expires_at must not be negative")
    return urlencode({"exp": expires_at, "sig": _signature(key, path, expires_at)})


def verify(
    key: bytes, path: str, exp: str | None, sig: str | None, now: float | None = None
) -> LinkCheck:
    """Check a link's parameters for ``path``; the signature is compared in constant time.

    A tampered link is INVALID even when its ``exp`` has passed: EXPIRED means "this was a
    real link, and it is too late".
    """
    if exp is None or sig is None or not _EXP.fullmatch(exp) or not _SIG.fullmatch(sig):
        return LinkCheck.INVALID
    if not hmac.compare_digest(_signature(key, path, int(exp)), sig):
        return LinkCheck.INVALID
    if int(exp) < (time.time() if now is None else now):
        return LinkCheck.EXPIRED
    return LinkCheck.OK


#: Where a job's results page lives (served by bots.page).
PAGE_PREFIX = "/r"


def page_url(public_url: str, key: bytes, job_key: str, expires_at: float) -> str:
    """The signed link to a job's results page (player, mixer, downloads), valid until then."""
    path = f"{PAGE_PREFIX}/{job_key}"
    return f"{public_url}{path}?{sign_path(key, path, int(expires_at))}"
