"""yt-dlp's HTTP handlers, with every redirect checked before it is followed.

A media URL comes from YouTube, but a redirect from it could point anywhere: at the
machine's own services (``127.0.0.1``), the local network (``10.x``, ``192.168.x``) or a
cloud metadata endpoint (``169.254.169.254``). yt-dlp follows redirects inside its request
handlers, so the check sits there: a redirect that stays on the same scheme, host and port
is followed; any other must lead over http(s) to a public host (no IP literal outside the
public ranges, no local name, no name that resolves to a non-public address). Anything else
fails the request with :class:`UnsafeRedirect` before a connection is opened.

:class:`RequestsRH` and :class:`UrllibRH` keep yt-dlp's handler names (``RH_KEY``), so its
preferences and messages still apply; handlers we cannot check (curl_cffi) are left out.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

from yt_dlp.networking import _urllib
from yt_dlp.networking.common import RequestHandler
from yt_dlp.networking.exceptions import RequestError

try:
    from yt_dlp.networking import _requests
except ImportError:  # yt-dlp without requests: urllib does the HTTP
    _requests = None

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home", ".arpa", ".corp")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|\d+")


class UnsafeRedirect(RequestError):
    """A redirect to a local or internal address, refused before connecting."""


def _public_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_public_host(host: str) -> bool:
    """True for a host name or address on the public internet (resolves names)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return _public_ip(host)
    except ValueError:
        pass
    labels = host.split(".")
    if not host or len(labels) < 2 or host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return False
    if all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return False  # 127.1, 0x7f.1: what inet_aton would still read as an address
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return True  # unresolvable: the connection fails on its own, nothing is reached
    return all(_public_ip(str(info[4][0])) for info in found)


def check_redirect(from_url: str, to_url: str) -> None:
    """Raise UnsafeRedirect unless following ``from_url`` -> ``to_url`` is safe."""
    old, new = urlsplit(from_url), urlsplit(urljoin(from_url, to_url))
    try:
        if (old.scheme, old.hostname, old.port) == (new.scheme, new.hostname, new.port):
            return
    except ValueError:  # a port out of range
        raise UnsafeRedirect("redirect to an unparsable URL refused") from None
    if new.scheme not in ("http", "https") or not new.hostname:
        raise UnsafeRedirect(f"redirect to a {new.scheme or 'relative'} URL refused")
    if "@" in new.netloc or not is_public_host(new.hostname):
        raise UnsafeRedirect(f"redirect to a non-public address refused ({new.hostname})")


def _guard_session_redirects(response: Any, *args: Any, **kwargs: Any) -> Any:
    """requests ``response`` hook: runs on each response, before its redirect is followed."""
    if response.is_redirect:
        try:
            check_redirect(response.url, response.headers["location"])
        except UnsafeRedirect:
            response.close()
            raise
    return response


if _requests is not None:

    class RequestsRH(_requests.RequestsRH):
        def _create_instance(self, *args: Any, **kwargs: Any) -> Any:
            session = super()._create_instance(*args, **kwargs)
            session.hooks["response"].append(_guard_session_redirects)
            return session


def _guard_urllib_redirects(handler: Any) -> None:
    """Check each redirect urllib's RedirectHandler is about to follow."""
    follow = handler.redirect_request

    def redirect_request(req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_redirect(req.full_url, newurl)
        return follow(req, fp, code, msg, headers, newurl)

    handler.redirect_request = redirect_request


class UrllibRH(_urllib.UrllibRH):
    def _create_instance(self, *args: Any, **kwargs: Any) -> Any:
        opener = super()._create_instance(*args, **kwargs)
        for handler in opener.handlers:
            if isinstance(handler, _urllib.RedirectHandler):
                _guard_urllib_redirects(handler)
        return opener


_GUARDED: dict[str, type[RequestHandler]] = {"Urllib": UrllibRH}
if _requests is not None:
    _GUARDED["Requests"] = RequestsRH
#: Handlers that make no HTTP redirects of their own.
_NO_REDIRECTS = frozenset({"Websockets"})


def guarded_handlers(handlers: Iterable[type[RequestHandler]]) -> list[type[RequestHandler]]:
    """yt-dlp's handler classes with ours in their place; unchecked HTTP handlers dropped."""
    kept: list[type[RequestHandler]] = []
    for handler in handlers:
        key = handler.RH_KEY
        if key in _GUARDED:
            kept.append(_GUARDED[key])
        elif key in _NO_REDIRECTS:
            kept.append(handler)
    return kept
