"""A YouTube video's audio, fetched with yt-dlp. Blocking: the worker calls these in a thread.

yt-dlp only ever sees the canonical ``https://www.youtube.com/watch?v=ID`` that
:mod:`shared.youtube` builds from a validated id, and only its single-video YouTube extractor
is enabled, so no user text can make it fetch another site. Live streams, premieres and too
long videos are refused from the metadata, before any media byte is requested; the audio
size is capped from the advertised size, from Content-Length and again while bytes arrive.

yt-dlp's errors become our domain errors (:func:`map_error`): transient ones (network,
HTTP 5xx, 429 throttling) as :class:`~shared.errors.DownloadFailed`, which the worker
retries with backoff; the rest fail at once with their own message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import GeoRestrictedError, YoutubeDLError

from shared.errors import (
    AgeRestricted,
    BotCheck,
    Cancelled,
    DownloadFailed,
    LiveStream,
    PlaylistLink,
    PrivateVideo,
    RegionBlocked,
    StembotError,
    TooLarge,
    TooLong,
    VideoUnavailable,
    YoutubeFailed,
)
from shared.youtube import canonical_url
from worker.redirects import UnsafeRedirect, guarded_handlers

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_SLEEP_S = 1.0
MAX_RETRY_SLEEP_S = 30.0
#: IE_NAME of yt-dlp's single-video YouTube extractor (``yt_dlp.extractor.youtube.YoutubeIE``);
#: matched in full against extractor names, so "youtube:tab", "generic" & co stay disabled.
ALLOWED_EXTRACTORS = ("youtube",)
#: ``live_status`` values whose length is not final yet.
_NOT_FINISHED = frozenset({"is_live", "is_upcoming", "post_live"})
#: HTTP statuses worth a later retry: YouTube's media servers answer 403 when a stream URL
#: went stale or the session is throttled; 408/429/5xx are the usual transient ones.
_TRANSIENT_STATUSES = frozenset({403, 408, 429, 500, 502, 503, 504})


class NetOptions(TypedDict, total=False):
    """Network settings for yt-dlp, passed through by :func:`probe_video`/:func:`download_audio`."""

    timeout_s: float
    retries: int
    retry_sleep_s: float
    cookies_file: Path | None
    proxy: str | None


@dataclass(frozen=True)
class VideoInfo:
    video_id: str
    title: str
    duration_s: float
    #: Canonical watch URL (the Source's ``url``).
    url: str
    #: Size of the audio stream yt-dlp chose, when YouTube tells it.
    size_bytes: int | None = None
    #: yt-dlp's (sanitized) info, so :func:`download_audio` needs no second extraction.
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def ydl_options(
    *,
    max_bytes: int,
    max_duration_s: float | None = None,
    dest_dir: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    retry_sleep_s: float = DEFAULT_RETRY_SLEEP_S,
    cookies_file: Path | None = None,
    proxy: str | None = None,
) -> dict[str, Any]:
    """Every yt-dlp option we use, and why. Holds the proxy URL: never log the result."""

    def backoff(n: int) -> float:
        return min(retry_sleep_s * 2**n, MAX_RETRY_SLEEP_S)

    options: dict[str, Any] = {
        # Only the single-video YouTube extractor may run: never the generic extractor (which
        # would fetch any URL), nor playlist/channel/search extractors.
        "allowed_extractors": list(ALLOWED_EXTRACTORS),
        # A watch URL with &list= (or a multi-camera video) is that one video, not a playlist.
        "noplaylist": True,
        # Audio only, the best YouTube has, as served (no re-encode: ffmpeg decodes any of it).
        # "best" only for the rare video without a separate audio stream.
        "format": "bestaudio/best",
        # Refuse live/upcoming/unknown-length and too long videos from the metadata, before
        # formats are chosen and before any media request.
        "match_filter": _Gate(max_duration_s),
        # Size cap from Content-Length (yt-dlp aborts before reading); our progress hook also
        # counts the bytes as they arrive, since a server may send no length.
        "max_filesize": max_bytes,
        # Seconds without data before a connection counts as failed (then retried).
        "socket_timeout": timeout_s,
        # Bounded retries with exponential backoff, for the HTTP download, its fragments,
        # YouTube's API calls and file access; whatever is left is the worker's (arq) retry.
        "retries": retries,
        "fragment_retries": retries,
        "extractor_retries": retries,
        "file_access_retries": retries,
        "retry_sleep_functions": {"http": backoff, "fragment": backoff, "extractor": backoff},
        # A missing piece fails the download instead of leaving a hole in the audio.
        "skip_unavailable_fragments": False,
        # Raise on errors instead of logging and going on; no "unplayable" info without
        # formats; never sit waiting for a premiere to start; no live-from-start.
        "ignoreerrors": False,
        "ignore_no_formats_error": False,
        "wait_for_video": None,
        "live_from_start": False,
        # No console output: messages go to our logger (errors come back as exceptions).
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "color": {"stdout": "no_color", "stderr": "no_color"},
        "consoletitle": False,
        "logger": _YtdlpLog(),
        # Nothing written outside the job's folder: no cache dir (~/.cache/yt-dlp), no
        # info json, thumbnails, subtitles, descriptions or comments.
        "cachedir": False,
        "writeinfojson": False,
        "writethumbnail": False,
        "writesubtitles": False,
        "writeautomaticsub": False,
        "writedescription": False,
        "getcomments": False,
        # No post-processing: no ffmpeg fixups or conversions (our decoder reads the file as
        # served), nothing that could reach the network after the download.
        "postprocessors": [],
        "fixup": "never",
        # Safe ASCII file names; a fresh download each time (no resuming a stale .part of an
        # earlier attempt, no "already downloaded" skip); keep the file's mtime as "now" so
        # the expiry sweep doesn't see an old file.
        "restrictfilenames": True,
        "continuedl": False,
        "overwrites": True,
        "updatetime": False,
        # Keep TLS verification.
        "nocheckcertificate": False,
    }
    if dest_dir is not None:
        # Written only into the job's temporary folder, as youtube-ID.EXT (+ .part meanwhile).
        options["paths"] = {"home": str(dest_dir), "temp": str(dest_dir)}
        options["outtmpl"] = {"default": "youtube-%(id)s.%(ext)s"}
    if cookies_file is not None:
        # cookies.txt for when YouTube wants a signed-in session (each call gets a private
        # copy, see _session: yt-dlp writes cookies back on close).
        options["cookiefile"] = str(cookies_file)
    if proxy:
        # A proxy (may hold credentials) for when YouTube blocks the server's address.
        options["proxy"] = proxy
    return options


def probe_video(
    video_id: str, *, max_duration_s: float, max_bytes: int, **net: Unpack[NetOptions]
) -> VideoInfo:
    """The video's metadata, checked: finished (not live/upcoming), within the duration
    limit, and an audio stream within the size limit when its size is known."""
    url = canonical_url(video_id)
    options = ydl_options(max_bytes=max_bytes, max_duration_s=max_duration_s, **net)
    with _session(options) as ydl:
        info = _guarded(lambda: ydl.extract_info(url, download=False))
        raw = ydl.sanitize_info(_checked(info, video_id, max_duration_s), remove_private_keys=True)
    size = raw.get("filesize")
    if isinstance(size, int) and size > max_bytes:
        raise TooLarge(max_bytes, size)
    return VideoInfo(
        video_id=video_id,
        title=str(raw.get("title") or video_id),
        duration_s=float(raw["duration"]),
        url=url,
        size_bytes=size if isinstance(size, int) else None,
        raw=raw,
    )


def download_audio(
    video: str | VideoInfo,
    dest_dir: Path,
    *,
    max_bytes: int,
    max_duration_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **net: Unpack[NetOptions],
) -> Path:
    """Download the best audio stream into ``dest_dir`` and return its path.

    ``video`` is a video id, or a :class:`VideoInfo` from :func:`probe_video` (its formats are
    used, no second extraction). ``on_progress`` gets a percent (0-100, rising, ending at
    100); ``should_stop`` is polled as data arrives and raises Cancelled. Partial files are
    removed whatever goes wrong.
    """
    video_id = video.video_id if isinstance(video, VideoInfo) else video
    url = canonical_url(video_id)
    dest_dir.mkdir(parents=True, exist_ok=True)
    hook = _ProgressHook(max_bytes, on_progress, should_stop)
    options = ydl_options(
        max_bytes=max_bytes, max_duration_s=max_duration_s, dest_dir=dest_dir, **net
    )
    options["progress_hooks"] = [hook]
    try:
        if should_stop is not None and should_stop():
            raise Cancelled()
        with _session(options) as ydl:
            if isinstance(video, VideoInfo) and video.raw:
                info = _guarded(lambda: ydl.process_ie_result(dict(video.raw), download=True))
            else:
                info = _guarded(lambda: ydl.extract_info(url, download=True))
        _checked(info, video_id, max_duration_s)
        path = _downloaded_path(info)
        if not hook.finished or path is None or not path.is_file():
            # yt-dlp stops silently when Content-Length is over max_filesize.
            raise TooLarge(max_bytes, hook.total)
        size = path.stat().st_size
        if size > max_bytes:
            raise TooLarge(max_bytes, size)
        return path
    except BaseException:
        for leftover in dest_dir.glob(f"youtube-{video_id}.*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        raise


# --- checks ------------------------------------------------------------------------------


def check_info(info: dict[str, Any], max_duration_s: float | None) -> None:
    """Refuse what we can't or won't separate, from the metadata alone."""
    live_status = info.get("live_status")
    if info.get("is_live") or live_status in _NOT_FINISHED:
        raise LiveStream(detail=f"live_status={live_status}")
    duration = info.get("duration")
    if not isinstance(duration, int | float) or duration <= 0:
        raise LiveStream(detail=f"no duration (live_status={live_status})")
    if max_duration_s is not None and duration > max_duration_s:
        raise TooLong(float(duration), int(max_duration_s))


class _Gate:
    """yt-dlp ``match_filter``: our checks, run by yt-dlp before it chooses a format.

    Raising (rather than returning a reason) makes yt-dlp stop instead of quietly skipping
    the video. It must never raise TypeError: yt-dlp takes that as an old-style filter.
    """

    def __init__(self, max_duration_s: float | None) -> None:
        self.max_duration_s = max_duration_s

    def __call__(self, info: dict[str, Any], *, incomplete: Any = False) -> None:
        check_info(info, self.max_duration_s)


def _checked(info: Any, video_id: str, max_duration_s: float | None) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise YoutubeFailed(detail="yt-dlp returned no info")
    if info.get("_type", "video") != "video":
        raise PlaylistLink()
    if info.get("id") != video_id:
        # YouTube answers some paid movies with their trailer: not what the user sent.
        raise VideoUnavailable(detail=f"YouTube gave video {info.get('id')!r}")
    check_info(info, max_duration_s)
    return info


def _downloaded_path(info: dict[str, Any]) -> Path | None:
    for download in info.get("requested_downloads") or ():
        if download.get("filepath"):
            return Path(download["filepath"])
    return None


class _ProgressHook:
    """yt-dlp progress hook: percent, the size cap while bytes arrive, cancellation."""

    def __init__(
        self,
        max_bytes: int,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.max_bytes = max_bytes
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.percent = -1.0
        self.total: int | None = None
        self.finished = False

    def __call__(self, status: dict[str, Any]) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled()
        done = int(status.get("downloaded_bytes") or 0)
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if not total:
            info = status.get("info_dict") or {}
            total = info.get("filesize") or info.get("filesize_approx")
        if total:
            self.total = int(total)
        if done > self.max_bytes or (status.get("total_bytes") or 0) > self.max_bytes:
            raise TooLarge(self.max_bytes, max(done, int(status.get("total_bytes") or 0)))
        if status.get("status") == "finished":
            self.finished = True
            self._report(100.0)
        elif status.get("status") == "downloading" and self.total:
            # A stream may run past its advertised size: stay below 100 until it is done.
            self._report(min(99.0, 100.0 * done / self.total))

    def _report(self, percent: float) -> None:
        if percent > self.percent:
            self.percent = percent
            if self.on_progress is not None:
                self.on_progress(percent)


# --- yt-dlp sessions and errors ----------------------------------------------------------


class _YtdlpLog:
    """yt-dlp's ``logger``: its chatter at debug level, warnings as warnings."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.warning("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        # Raised right after as a domain error, which is what gets reported.
        log.info("yt-dlp: %s", msg)


@contextlib.contextmanager
def _session(options: dict[str, Any]) -> Iterator[_YoutubeDL]:
    """A YoutubeDL for one call; the operator's cookies file is read, never rewritten."""
    cookies = options.get("cookiefile")
    with tempfile.TemporaryDirectory(prefix="stembot-ytdlp-") as private:
        if cookies is not None:
            copy = Path(private) / "cookies.txt"
            shutil.copyfile(cookies, copy)
            options = {**options, "cookiefile": str(copy)}
        with _YoutubeDL(options) as ydl:
            yield ydl


class _YoutubeDL(yt_dlp.YoutubeDL):
    """Closes every HTTP response it opened when the session ends, and follows no redirect
    to a local or internal address (worker.redirects).

    yt-dlp leaves responses open when a download stops early (size cap, cancellation, a
    retried 5xx, a timeout) and inside the errors it raises; a long-running worker would
    otherwise hold their sockets until the garbage collector finds them.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        self._opened: list[Any] = []
        super().__init__(params)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        return super().build_request_director(guarded_handlers(handlers), preferences)

    def urlopen(self, req: Any) -> Any:
        try:
            response = super().urlopen(req)
        except HTTPError as exc:
            self._opened.append(exc.response)
            raise
        self._opened.append(response)
        return response

    def close(self) -> None:
        try:
            super().close()
        finally:
            for response in self._opened:
                with contextlib.suppress(Exception):
                    response.close()
            self._opened.clear()


def _guarded(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except YoutubeDLError as exc:
        raise map_error(exc) from exc


#: (pattern in yt-dlp's message, error), first match wins. The texts are YouTube's own
#: playability reasons as yt-dlp's YouTube extractor passes them on.
_MESSAGES: tuple[tuple[re.Pattern[str], Callable[[str], StembotError]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), error)
    for pattern, error in (
        (r"confirm you.?re not a bot|captcha", BotCheck),
        (r"try again later|rate.?limit|too many requests|HTTP Error 429", DownloadFailed),
        (
            r"confirm your age|age.?restricted|inappropriate for some users|age.?verification",
            AgeRestricted,
        ),
        (
            r"not (?:made this video )?available in your country|in your country|geo.?restrict"
            r"|not available from your location",
            RegionBlocked,
        ),
        (
            r"private video|video is private|members.?only|join this channel|premium members"
            r"|requires payment",
            PrivateVideo,
        ),
        (
            r"live event will begin|premieres? in|premiere will begin|live event has ended"
            r"|is_upcoming|live stream recording is not available|this live event",
            LiveStream,
        ),
        (
            r"video unavailable|been removed|no longer available|been terminated"
            r"|video is unavailable|video isn.t available|does not exist|DRM protected"
            r"|copyright",
            VideoUnavailable,
        ),
    )
)
_NETWORK_TEXT = re.compile(
    r"timed out|Giving up after \d+ retries|Connection (?:reset|refused|aborted)"
    r"|Remote end closed|IncompleteRead|Temporary failure in name resolution"
    r"|Name or service not known|Network is unreachable|content too short",
    re.IGNORECASE,
)
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")


def map_error(exc: BaseException) -> StembotError:
    """The domain error for a yt-dlp failure (DownloadError/ExtractorError and causes)."""
    if isinstance(exc, StembotError):
        return exc
    chain = list(_causes(exc))
    for err in chain:
        if isinstance(err, StembotError):
            return err
    text = str(exc)
    detail = text[:500]
    if any(isinstance(err, UnsafeRedirect) for err in chain):
        return YoutubeFailed(detail)  # never retried: the media server sent us elsewhere
    if any(isinstance(err, GeoRestrictedError) for err in chain):
        return RegionBlocked(detail)
    for pattern, error in _MESSAGES:
        if pattern.search(text):
            return error(detail)
    statuses = [err.status for err in chain if isinstance(err, HTTPError)]
    statuses += [int(m) for m in _HTTP_STATUS.findall(text)]
    if statuses:
        return (
            DownloadFailed(detail) if statuses[0] in _TRANSIENT_STATUSES else YoutubeFailed(detail)
        )
    network = (TransportError, TimeoutError, socket.timeout, ConnectionError)
    if any(isinstance(err, network) for err in chain) or _NETWORK_TEXT.search(text):
        return DownloadFailed(detail)
    return YoutubeFailed(detail)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: yt-dlp keeps the original in ``exc_info`` and ``cause``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        exc_info = getattr(err, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        cause = getattr(err, "cause", None)
        if isinstance(cause, BaseException):
            todo.append(cause)
        todo += [err.__cause__, err.__context__]
