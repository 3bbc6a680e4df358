"""HMAC-signed, expiring links. The signature covers the path, so a link opens one file.

A link is ``<path>?exp=<unix seconds>&sig=<hex HMAC-SHA256 of "<path>\\n<exp>">``. The path
signed is the decoded URL path (``/files/<job key>/<filename>``): the job folder and the file
name are both covered, so a link for one file opens no other file, in this job or another.

Only ``exp`` and ``sig`` are read from a link's query; anything else in it is not signed and
changes nothing a link opens. The results page reads one such parameter, ``lang`` (the
language it is shown in, :func:`with_lang`), so switching language keeps the link valid.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from enum import Enum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.i18n import negotiate

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
#: The page's language in its link's query (not signed: see the module's docstring).
LANG_PARAM = "lang"


def page_url(
    public_url: str, key: bytes, job_key: str, expires_at: float, lang: str | None = None
) -> str:
    """The signed link to a job's results page (player, mixer, downloads), valid until then,
    shown in ``lang`` (None: the browser's language)."""
    path = f"{PAGE_PREFIX}/{job_key}"
    return with_lang(f"{public_url}{path}?{sign_path(key, path, int(expires_at))}", lang)


def with_lang(url: str, lang: str | None) -> str:
    """``url`` (a page link, absolute or not) shown in ``lang``: its ``lang`` parameter set to
    the language's tag (pt-BR), or removed for None; the rest of the link is left as it is,
    so its signature still holds."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != LANG_PARAM]
    if lang is not None:
        query.append((LANG_PARAM, negotiate(lang).replace("_", "-")))
    return urlunsplit(parts._replace(query=urlencode(query)))
