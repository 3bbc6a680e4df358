"""Files whose content makes ffmpeg open other files or URLs: playlists, manifests, scripts.

Each names a *canary*: a real mp3 on the server's disk (that a user never sent) and a local
HTTP server that serves it. If ffmpeg followed any of them, the song would be separated and
served back to the sender; the tests check each file is refused and the canaries were never
touched (the HTTP server saw no request, the file's access time did not move).
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.audio import make_audio
from tests.support.web import serving


@dataclass
class Canary:
    """A song on the server's disk and on a local HTTP server, that nobody may read."""

    file: Path
    url: str
    #: the song itself as a data: URI (made once: reading the file later would move its atime)
    data_uri: str
    requests: list[str] = field(default_factory=list)
    #: whether this filesystem records reads in the access time (not mounted noatime)
    shows_reads: bool = False

    def atime_ns(self) -> int:
        return self.file.stat().st_atime_ns

    def arm(self) -> bool:
        """Set the file's access time before its change time, so that any read moves it
        (relatime updates an atime older than mtime); True when this filesystem shows reads."""
        st = self.file.stat()
        os.utime(self.file, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
        before = self.atime_ns()
        self.file.read_bytes()
        self.shows_reads = self.atime_ns() != before
        st = self.file.stat()
        os.utime(self.file, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
        return self.shows_reads

    def assert_untouched(self) -> None:
        """No HTTP request came, and (where the filesystem shows reads) nothing read the file."""
        assert self.requests == []
        if self.shows_reads:
            assert self.atime_ns() < self.file.stat().st_mtime_ns, "the canary file was read"


@asynccontextmanager
async def canary(folder: Path) -> AsyncIterator[Canary]:
    """The canary song in ``folder``, served over HTTP on 127.0.0.1 while the block runs,
    armed (its access time set to show the next read)."""
    folder.mkdir(parents=True, exist_ok=True)
    song = make_audio(folder / "canary.mp3", seconds=4.0)
    body = song.read_bytes()
    playlist = "#EXTM3U\n#EXTINF:4.0,\nhttp://127.0.0.1:{port}/canary.mp3\n#EXT-X-ENDLIST\n"
    found: Canary | None = None

    async def handle(request: web.Request) -> web.StreamResponse:
        assert found is not None
        found.requests.append(request.path_qs)
        if request.path.endswith(".m3u8"):
            port = request.url.port
            return web.Response(text=playlist.format(port=port), content_type="text/plain")
        return web.Response(body=body, content_type="audio/mpeg")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    song.with_suffix(".m3u8").write_text(_hls(str(song)))
    async with serving(app) as base_url:
        found = Canary(song, base_url, data_uri=_data_uri(body))
        found.arm()
        yield found


def _up(path: Path) -> str:
    """``path`` as a relative name from anywhere on the disk (enough ``..`` to reach /)."""
    return "../" * 24 + str(path).lstrip("/")


def _hls(*entries: str, head: str = "") -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:5", head]
    for entry in entries:
        lines += ["#EXTINF:4.0,", entry]
    return "\n".join([*(line for line in lines if line), "#EXT-X-ENDLIST", ""])


def _data_uri(body: bytes) -> str:
    return "data:audio/mpeg;base64," + base64.b64encode(body).decode()


#: name -> builder(canary) -> file content. Names say what each one points at.
HOSTILE: dict[str, Callable[[Canary], str]] = {
    "hls-absolute-path": lambda c: _hls(str(c.file)),
    "hls-relative-path": lambda c: _hls(_up(c.file)),
    "hls-file-url": lambda c: _hls(f"file://{c.file}"),
    "hls-http-url": lambda c: _hls(f"{c.url}/segment.mp3"),
    "hls-data-uri": lambda c: _hls(c.data_uri),
    "hls-key-uri": lambda c: _hls(
        f"{c.url}/segment.mp3",
        head=f'#EXT-X-KEY:METHOD=AES-128,URI="file://{c.file}"',
    ),
    "hls-master-http": lambda c: (
        f'#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS="mp4a.40.2"\n{c.url}/variant.m3u8\n'
    ),
    "hls-master-file": lambda c: (
        f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=128000\nfile://{c.file.with_suffix('.m3u8')}\n"
    ),
    "ffconcat-absolute": lambda c: f"ffconcat version 1.0\nfile '{c.file}'\n",
    "ffconcat-relative": lambda c: f"ffconcat version 1.0\nfile '{_up(c.file)}'\n",
    "ffconcat-http": lambda c: f"ffconcat version 1.0\nfile '{c.url}/segment.mp3'\n",
    "ffconcat-subfile": lambda c: (
        f"ffconcat version 1.0\nfile 'subfile,,start,0,end,0,,:{c.file}'\n"
    ),
    "ffconcat-data-uri": lambda c: f"ffconcat version 1.0\nfile '{c.data_uri}'\n",
    "dash-manifest": lambda c: (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT4S" minBufferTime="PT1S" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n'
        f"<BaseURL>{c.url}/</BaseURL>\n"
        '<Period><AdaptationSet mimeType="audio/mpeg">'
        '<Representation id="a" bandwidth="128000"><BaseURL>segment.mp3</BaseURL>'
        "</Representation></AdaptationSet></Period></MPD>\n"
    ),
    "sdp-rtp": lambda c: (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=canary\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 5004 RTP/AVP 14\r\na=rtpmap:14 MPA/90000\r\n"
    ),
    "sbaGen-script": lambda c: "-SE\nalpha: 300+10/50\nNOW alpha\n+00:00:04 == alpha\n",
}


def write_hostile(folder: Path, name: str, found: Canary) -> Path:
    """The hostile file ``name`` (a key of HOSTILE) as ``song.mp3`` in a folder of its own."""
    path = folder / name / "song.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HOSTILE[name](found))
    return path
