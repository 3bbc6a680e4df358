"""YouTube links: strict parsing to a video id, before anything touches the network.

Users send links in many forms (watch, youtu.be, shorts, music, mobile, embed, live, with
``&t=``, ``&si=``, ``&list=`` ...). All of them become the 11-character video id, which is the
source identity for caching, and the downloader is only ever given the canonical URL built
here from that id: nothing a user typed reaches yt-dlp or the network.

Pure functions: no network, no yt-dlp.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, urlsplit

from shared.errors import (
    NotAUrl,
    NotAVideoLink,
    PlaylistLink,
    UnsafeUrl,
    UnsupportedSite,
)

#: A YouTube video id: 11 characters of the URL-safe base64 alphabet.
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")

#: Hosts that serve watch pages (``/watch?v=``, ``/shorts/ID``, ``/embed/ID``, ...).
_WATCH_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"})
#: Short links: ``youtu.be/ID``.
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
#: Privacy-enhanced embeds: ``youtube-nocookie.com/embed/ID``.
_NOCOOKIE_HOSTS = frozenset({"youtube-nocookie.com", "www.youtube-nocookie.com"})
_HOSTS = _WATCH_HOSTS | _SHORT_HOSTS | _NOCOOKIE_HOSTS

#: First path segment followed by the video id (``/shorts/ID``, ``/live/ID``, old ``/v/ID``).
_ID_IN_PATH = frozenset({"shorts", "embed", "live", "v", "e"})
#: First path segments of playlist, channel and album pages.
_LIST_PATHS = frozenset({"playlist", "channel", "c", "user", "browse"})

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: ``host:port...`` without a scheme looks like ``scheme:...`` to urlsplit.
_HOST_PORT_RE = re.compile(r"^[A-Za-z0-9.-]+:\d*(?:[/?#]|$)")
_DOTTED_HOST_RE = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.?(?::\d+)?(?:[/?#]|$)")
_BAD_CHARS_RE = re.compile(r"[\\\x00-\x1f\x7f<>\"'`{}|^]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home", ".arpa", ".corp")


def canonical_url(video_id: str) -> str:
    """The one URL we hand to the downloader for ``video_id``."""
    if not VIDEO_ID_RE.fullmatch(video_id):
        raise NotAVideoLink()
    return f"https://www.youtube.com/watch?v={video_id}"


def parse_youtube_url(text: str) -> str:
    """The video id of a YouTube video link, or the domain error that says what is wrong.

    Raises NotAUrl, UnsafeUrl, UnsupportedSite, PlaylistLink or NotAVideoLink.
    """
    url = text.strip()
    if not url or len(url) > 2048:
        raise NotAUrl()
    if re.search(r"\s", url):
        raise NotAUrl()  # a sentence, or several words: find_youtube_url() is for messages
    if _BAD_CHARS_RE.search(url):
        # Backslashes (browsers read them as "/"), control characters, quotes, brackets.
        raise UnsafeUrl("odd characters")
    url = _with_scheme(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "host:abc", "[::1" ...
        raise UnsafeUrl(f"unparsable: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl(f"scheme {parts.scheme!r}")
    if "@" in parts.netloc:
        raise UnsafeUrl("credentials in the URL")
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        raise UnsafeUrl(f"port {port}")
    host = (parts.hostname or "").lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if not host:
        raise NotAUrl()
    _check_public_host(host)
    if host not in _HOSTS:
        raise UnsupportedSite()
    return _video_id(host, parts.path, parts.query)


def _with_scheme(url: str) -> str:
    """Give scheme-less input ("youtu.be/ID", "//youtube.com/...") an https scheme."""
    if url.startswith("//"):
        return "https:" + url
    match = _SCHEME_RE.match(url)
    if match and url[match.end() : match.end() + 2] == "//":
        return url
    if match and not _HOST_PORT_RE.match(url):
        # "javascript:...", "data:...", "mailto:...", "file:/etc/passwd"
        raise UnsafeUrl(f"scheme {match.group(1)!r}")
    if _HOST_PORT_RE.match(url) or _DOTTED_HOST_RE.match(url) or url.startswith("["):
        return "https://" + url
    raise NotAUrl()


def _check_public_host(host: str) -> None:
    """Refuse IP literals (any notation), localhost, single-label and internal names."""
    if host.startswith("[") or ":" in host:
        raise UnsafeUrl("IPv6 literal")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise UnsafeUrl("IP literal")
    labels = host.split(".")
    # 127.1, 0x7f.1, 2130706433: what inet_aton would still read as an address.
    if all(re.fullmatch(r"(?:0x[0-9a-f]*|\d+)", label) for label in labels):
        raise UnsafeUrl("numeric host")
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or len(labels) < 2:
        raise UnsafeUrl("local host name")


def _video_id(host: str, path: str, query: str) -> str:
    segments = [s for s in path.split("/") if s]
    first = segments[0].lower() if segments else ""
    params = parse_qs(query)
    if host in _SHORT_HOSTS:
        # youtu.be/ID; &list= next to an id still means that one video.
        return _checked_id(segments[0] if len(segments) == 1 else None)
    if host in _NOCOOKIE_HOSTS:
        if first == "embed" and len(segments) == 2:
            return _embed_id(segments[1], params)
        raise NotAVideoLink()
    if first == "watch" and len(segments) == 1:
        if "v" in params:
            return _checked_id(params["v"][0])
        if "list" in params:
            raise PlaylistLink()
        raise NotAVideoLink()
    if first in _ID_IN_PATH and len(segments) == 2:
        if first == "embed":
            return _embed_id(segments[1], params)
        return _checked_id(segments[1])
    if first in _LIST_PATHS or first.startswith("@") or (first == "" and "list" in params):
        raise PlaylistLink()
    raise NotAVideoLink()


def _embed_id(segment: str, params: dict[str, list[str]]) -> str:
    if segment == "videoseries" and "list" in params:
        raise PlaylistLink()
    return _checked_id(segment)


def _checked_id(candidate: str | None) -> str:
    if candidate is None or not VIDEO_ID_RE.fullmatch(candidate):
        raise NotAVideoLink()
    return candidate


# --- finding a link in a chat message ----------------------------------------------------

_HOSTS_RE = (
    r"(?:(?:www|m|music)\.)?youtube\.com|(?:www\.)?youtu\.be|(?:www\.)?youtube-nocookie\.com"
)
_YOUTUBE_LINK_RE = re.compile(
    r"(?<![\w.@:/-])"  # not the tail of another host, path or "user:pass@"
    r"(?:https?://)?"
    rf"(?:{_HOSTS_RE})"
    r"(?![\w-]|\.[\w-])"  # not "youtube.com.evil.com"
    r"(?::\d+)?(?:[/?#][^\s<>\"'`]*)?",
    re.IGNORECASE,
)
_ANY_LINK_RE = re.compile(
    r"(?<![\w.@-])(?:[A-Za-z][A-Za-z0-9+.-]*://|www\.)[^\s<>\"'`]+",
)
#: Sentence punctuation after a link; never part of an id ("_" and "-" can end an id).
_TRAILING = ".,;:!?]}>*'\""


def find_youtube_url(text: str) -> str | None:
    """The first YouTube link in a chat message (with or without https://), or None.

    Trailing punctuation and Markdown/angle-bracket wrapping are left out; hand the result
    to :func:`parse_youtube_url`, which still decides whether it is acceptable.
    """
    match = _YOUTUBE_LINK_RE.search(text)
    return _trim(match.group(0)) if match else None


def find_url(text: str) -> str | None:
    """The first link of any kind (``scheme://...`` or ``www....``) in a message, or None.

    Lets a frontend answer "only YouTube" (via :func:`parse_youtube_url`) when a message
    holds a link but no YouTube link.
    """
    youtube = _YOUTUBE_LINK_RE.search(text)
    other = _ANY_LINK_RE.search(text)
    first = min((m for m in (youtube, other) if m), key=lambda m: m.start(), default=None)
    return _trim(first.group(0)) if first else None


def _trim(url: str) -> str:
    url = url.rstrip(_TRAILING)
    # "(see https://youtu.be/ID)" and Markdown "[x](URL)" lose the ")"; a balanced one stays.
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1].rstrip(_TRAILING)
    return url
