"""A stand-in for YouTube's servers, for tests that can't reach YouTube.

yt-dlp's real YouTube extractor (``yt_dlp.extractor.youtube.YoutubeIE``) stays in charge; only
its two network-facing steps are redirected to a local aiohttp server:

- every extraction first asks the fake "player API" (``/youtubei/v1/player``) through
  yt-dlp's real HTTP stack, so a test can make YouTube answer 429/503 or time out;
- an unplayable video (private, removed, age-gated, region-blocked, bot check, upcoming) is a
  player response with the ``playabilityStatus`` YouTube sends, and the extractor's own code
  turns it into its error (same texts, same exception classes as against YouTube);
- a playable video is the info dict the extractor would build, whose formats point at media
  bytes this server serves (with Range support like googlevideo.com, or misbehaving on
  purpose: no Content-Length, HTTP errors, dropped connections, stalls).

Our options, yt-dlp's format selection, its HTTP downloader, retries and hooks all run for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiohttp import web
from yt_dlp.extractor.youtube import YoutubeIE

MediaMode = Literal["ok", "no_length", "status", "drop", "stall"]

#: Player responses of unplayable videos, as YouTube sends them (``playabilityStatus``).
PRIVATE = {
    "status": "LOGIN_REQUIRED",
    "reason": "This video is private",
    "errorScreen": {
        "playerErrorMessageRenderer": {
            "reason": {"simpleText": "Private video"},
            "subreason": {"simpleText": "Sign in if you've been granted access to this video"},
        }
    },
}
REMOVED = {
    "status": "ERROR",
    "reason": "This video has been removed by the uploader",
    "errorScreen": {
        "playerErrorMessageRenderer": {
            "reason": {"simpleText": "Video unavailable"},
            "subreason": {"simpleText": "This video has been removed by the uploader"},
        }
    },
}
UNAVAILABLE = {"status": "ERROR", "reason": "This video is unavailable"}
AGE_RESTRICTED = {
    "status": "LOGIN_REQUIRED",
    "reason": "Sign in to confirm your age",
    "errorScreen": {
        "playerErrorMessageRenderer": {
            "reason": {"simpleText": "Sign in to confirm your age"},
            "subreason": {"simpleText": "This video may be inappropriate for some users."},
        }
    },
}
REGION_BLOCKED = {
    "status": "UNPLAYABLE",
    "reason": "Video unavailable",
    "errorScreen": {
        "playerErrorMessageRenderer": {
            "reason": {"simpleText": "Video unavailable"},
            "subreason": {
                "simpleText": "The uploader has not made this video available in your country"
            },
        }
    },
}
BOT_CHECK = {
    "status": "LOGIN_REQUIRED",
    "reason": "Sign in to confirm you’re not a bot",
    "errorScreen": {
        "playerErrorMessageRenderer": {
            "reason": {"simpleText": "Sign in to confirm you’re not a bot"},
            "subreason": {"simpleText": "This helps protect our community. Learn more"},
        }
    },
}
MEMBERS_ONLY = {
    "status": "UNPLAYABLE",
    "reason": "Join this channel to get access to members-only content like this video, "
    "and other exclusive perks.",
}
UPCOMING = {"status": "LIVE_STREAM_OFFLINE", "reason": "This live event will begin in 3 hours."}
PREMIERE = {"status": "LIVE_STREAM_OFFLINE", "reason": "Premieres in 10 hours"}
RATE_LIMITED = {"status": "UNPLAYABLE", "reason": "This content isn't available, try again later."}


@dataclass
class Media:
    """Bytes served at ``/videoplayback/{name}``, and how the server behaves."""

    data: bytes
    mode: MediaMode = "ok"
    #: HTTP status for mode "status".
    status: int = 503
    #: Mode "drop": close the connection after this many body bytes ...
    drop_after: int = 1000
    #: ... this many times (then serve normally); None = always.
    drop_times: int | None = None
    #: Requests seen, as (Range header or None).
    requests: list[str | None] = field(default_factory=list)


@dataclass
class FakeVideo:
    video_id: str
    title: str = "Fake Song"
    duration: float | None = 3.0
    live_status: str | None = "not_live"
    #: Served audio (None: an unplayable video, see ``playability``).
    media: str | None = None
    ext: str = "m4a"
    acodec: str = "mp4a.40.2"
    #: Advertised size: True = the real size, None = unknown, an int = that (a lie).
    filesize: int | bool | None = True
    #: Like YouTube's formats: yt-dlp fetches them in Range chunks of this size.
    chunk_size: int | None = None
    #: playabilityStatus of an unplayable video.
    playability: dict[str, Any] | None = None


class FakeYouTube:
    def __init__(self) -> None:
        self.videos: dict[str, FakeVideo] = {}
        self.media: dict[str, Media] = {}
        #: Status the player API answers with (429 throttling, 503 outage), else 200.
        self.api_status = 200
        #: Player API calls seen (video ids).
        self.api_calls: list[str] = []
        #: Requests to any other path (e.g. a page the generic extractor would fetch).
        self.other_requests: list[str] = []
        self.base_url = ""
        self._release = asyncio.Event()

    # --- what YouTube holds ---------------------------------------------------------------

    def serve(self, name: str, data: bytes, **behaviour: Any) -> Media:
        self.media[name] = Media(data, **behaviour)
        return self.media[name]

    def add_video(self, video_id: str, data: bytes | None = None, **fields: Any) -> FakeVideo:
        """A playable video; ``data`` is served as its audio stream (named after the id)."""
        video = FakeVideo(video_id, **fields)
        if data is not None:
            self.serve(video_id, data)
            video.media = video_id
        self.videos[video_id] = video
        return video

    def add_unplayable(self, video_id: str, playability: dict[str, Any]) -> FakeVideo:
        video = FakeVideo(video_id, playability=playability)
        self.videos[video_id] = video
        return video

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # --- what yt-dlp's extractor gets ------------------------------------------------------

    def player_response(self, video_id: str) -> dict[str, Any]:
        video = self.videos.get(video_id)
        if video is None:
            return {"playabilityStatus": {"status": "ERROR", "reason": "Video unavailable"}}
        details = {
            "videoId": video_id,
            "title": video.title,
            "lengthSeconds": str(int(video.duration or 0)),
            "isLive": video.live_status == "is_live",
            "isUpcoming": video.live_status == "is_upcoming",
            "isLiveContent": video.live_status not in (None, "not_live"),
        }
        status = video.playability or {"status": "OK"}
        return {"playabilityStatus": status, "videoDetails": details}

    def info_dict(self, video: FakeVideo) -> dict[str, Any]:
        """What YoutubeIE returns for a playable video: best audio, a worse audio, a muxed
        video format (only "best" would take it)."""
        assert video.media is not None
        media = self.media[video.media]
        size: int | None
        size = len(media.data) if video.filesize is True else video.filesize or None
        audio: dict[str, Any] = {
            "format_id": "251" if video.ext == "webm" else "140",
            "url": self.url(f"/videoplayback/{video.media}?itag=best&expire=1"),
            "ext": video.ext,
            "acodec": video.acodec,
            "vcodec": "none",
            "abr": 130.0,
            "tbr": 130.0,
            "asr": 48000,
            "audio_channels": 2,
            "filesize": size,
            "container": f"{video.ext}_dash",
            "format_note": "medium",
            "quality": 3,
        }
        if video.live_status == "is_live":
            audio.update(protocol="m3u8_native", ext="mp4", filesize=None)
        if video.chunk_size:
            audio["downloader_options"] = {"http_chunk_size": video.chunk_size}
        worse = {
            **audio,
            "format_id": "249",
            "abr": 50.0,
            "tbr": 50.0,
            "quality": 2,
            "url": self.url("/videoplayback/missing?itag=249"),
        }
        muxed = {
            "format_id": "18",
            "url": self.url("/videoplayback/missing?itag=18"),
            "ext": "mp4",
            "acodec": "mp4a.40.2",
            "vcodec": "avc1.42001E",
            "width": 640,
            "height": 360,
            "tbr": 500.0,
        }
        return {
            "id": video.video_id,
            "title": video.title,
            "duration": video.duration,
            "live_status": video.live_status,
            "is_live": video.live_status == "is_live",
            "was_live": video.live_status == "was_live",
            "availability": "public",
            "channel": "Fake Channel",
            "uploader": "Fake Channel",
            "formats": [worse, muxed, audio],
            "thumbnails": [],
        }

    # --- the server ------------------------------------------------------------------------

    async def _player(self, request: web.Request) -> web.Response:
        video_id = request.query.get("videoId", "")
        self.api_calls.append(video_id)
        if self.api_status != 200:
            return web.Response(status=self.api_status, text="Too Many Requests")
        return web.json_response(self.player_response(video_id))

    async def _videoplayback(self, request: web.Request) -> web.StreamResponse:
        media = self.media.get(request.match_info["name"])
        if media is None:
            return web.Response(status=404)
        range_header = request.headers.get("Range")
        media.requests.append(range_header)
        if media.mode == "status":
            return web.Response(status=media.status, text="error")
        if media.mode == "no_length":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(media.data), 16 * 1024):
                await response.write(media.data[start : start + 16 * 1024])
            await response.write_eof()
            return response
        start, end = 0, len(media.data) - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if match:
            start = int(match.group(1))
            end = min(end, int(match.group(2))) if match.group(2) else end
        body = media.data[start : end + 1]
        response = web.StreamResponse(status=206 if match else 200)
        response.content_type = "audio/mp4"
        response.content_length = len(body)
        if match:
            response.headers["Content-Range"] = f"bytes {start}-{end}/{len(media.data)}"
        await response.prepare(request)
        if media.mode == "drop" and media.drop_times != 0:
            if media.drop_times is not None:
                media.drop_times -= 1
            await response.write(body[: media.drop_after])
            assert request.transport is not None
            request.transport.close()
            return response
        if media.mode == "stall":
            await response.write(body[:1000])
            await self._release.wait()
            return response
        await response.write(body)
        await response.write_eof()
        return response

    async def _other(self, request: web.Request) -> web.Response:
        self.other_requests.append(request.path_qs)
        return web.Response(text="<html><video src='/videoplayback/x'></video></html>")

    @contextlib.asynccontextmanager
    async def running(self, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeYouTube]:
        app = web.Application()
        app.router.add_get("/youtubei/v1/player", self._player)
        app.router.add_get("/videoplayback/{name}", self._videoplayback)
        app.router.add_get("/{tail:.*}", self._other)
        runner = web.AppRunner(app, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._patch(monkeypatch)
        try:
            yield self
        finally:
            self._release.set()
            await runner.cleanup()

    def _patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = self
        real_extract = YoutubeIE._real_extract

        def fetch_player_response(ie: YoutubeIE, video_id: str) -> dict[str, Any]:
            # Through yt-dlp's own HTTP stack: socket_timeout, retries and errors are real.
            response = ie._download_json(
                fake.url("/youtubei/v1/player"),
                video_id,
                note="Downloading player API JSON",
                query={"videoId": video_id},
            )
            assert isinstance(response, dict)
            return response

        def _initial_extract(
            ie: YoutubeIE, url: str, smuggled_data: Any, webpage_url: str, client: Any, vid: str
        ) -> tuple[Any, ...]:
            # (webpage, ytcfg, initial_data, is_premium_subscriber, player_responses, player_url)
            return None, {}, {}, False, [fetch_player_response(ie, vid)], None

        def _real_extract(ie: YoutubeIE, url: str) -> dict[str, Any]:
            video_id = ie._match_id(url)
            video = fake.videos.get(video_id)
            if video is None or video.media is None:
                # Unplayable or unknown: the extractor's real code reads the player response.
                return real_extract(ie, url)
            fetch_player_response(ie, video_id)
            return fake.info_dict(video)

        monkeypatch.setattr(YoutubeIE, "_initial_extract", _initial_extract)
        monkeypatch.setattr(YoutubeIE, "_real_extract", _real_extract)
