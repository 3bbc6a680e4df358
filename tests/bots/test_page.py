"""The results page behind the chat link: a real job through the service, then the page."""

from __future__ import annotations

import contextlib
import html
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from bots.page import add_page_routes, page_path, page_url
from bots.web import create_app
from shared.config import Settings
from shared.intake import file_chunks, submit_upload
from shared.links import sign_path
from shared.redis_server import PrivateRedis, free_port
from shared.schemas import JobResult, JobState
from shared.storage import LocalStorage, build_storage
from tests.support.audio import make_audio
from tests.support.music import MINOR, Song, write_song
from tests.support.service import Service, running_service
from tests.support.web import serving
from worker import peaks as peaks_mod

TITLE = 'Tom & Jerry <script>alert("x")'
STATIC = Path(__file__).resolve().parents[2] / "bots" / "static"


@dataclass
class Page:
    svc: Service
    base: str
    result: JobResult
    url: str
    http: aiohttp.ClientSession


async def finish_job(
    svc: Service, tmp_path: Path, title: str = TITLE, song: Path | None = None
) -> JobResult:
    """Upload ``song`` (a 2 s wav by default) under ``title`` and wait for its result."""
    await svc.redis.flushall()
    audio = song or make_audio(tmp_path / "a.wav", seconds=2.0)
    stream = f"test:events:{uuid.uuid4().hex}"
    await submit_upload(
        redis=svc.redis,
        storage=svc.storage,
        settings=svc.settings,
        chunks=file_chunks(audio),
        filename=f"{title}.wav",
        frontend="test",
        user_id="test:u1",
        reply_to=stream,
        options=svc.options(),
    )
    final = (await svc.events_until_final(stream))[-1]
    assert final.state == JobState.DONE, final
    assert final.result is not None
    return final.result


@contextlib.asynccontextmanager
async def finished_page(
    redis_server: PrivateRedis,
    storage_dir: Path,
    model_repo: Path,
    tmp_path: Path,
    song: Path | None = None,
) -> AsyncIterator[Page]:
    """A finished job (of ``song``, else a 2 s wav), and a web app with the page routes on
    its own port."""
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        result = await finish_job(svc, tmp_path, song=song)
        app = create_app(svc.settings, svc.storage, run_cleanup=False)
        add_page_routes(app, settings=svc.settings, storage=svc.storage, redis=svc.redis)
        async with serving(app) as base, aiohttp.ClientSession() as http:
            link = page_url(svc.settings, result)
            # the link names the public server; the page test app listens on another port
            url = base + link.removeprefix(svc.settings.storage.public_url)
            yield Page(svc, base, result, url, http)


def test_page_url_is_signed_with_the_result_expiry(tmp_path: Path) -> None:
    settings = Settings(
        storage_dir=tmp_path, public_url="https://stems.example", signing_key="k" * 20
    )
    result = JobResult.model_validate(
        {
            "key": "abc123",
            "title": "t",
            "model": "htdemucs",
            "stems_mode": "all",
            "format": "mp3",
            "duration_s": 1.0,
            "stems": [],
            "zip": {"name": "all", "filename": "stems.zip", "size_bytes": 1, "url": "u"},
            "created_at": 1.0,
            "expires_at": 2_000_000_000.5,
        }
    )
    query = sign_path(settings.storage.signing_key_bytes(), "/r/abc123", 2_000_000_000)
    # in the requester's language (English unless told), which the signature does not cover
    assert page_url(settings, result) == f"https://stems.example/r/abc123?{query}&lang=en"
    assert page_url(settings, result, "pt_BR").endswith(f"?{query}&lang=pt-BR")
    assert page_url(settings, result, None) == f"https://stems.example/r/abc123?{query}"
    with pytest.raises(ValueError):
        page_path("../etc")


@contextlib.contextmanager
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Record every process started meanwhile (asyncio's subprocesses go through Popen too)."""
    started: list[object] = []

    class Recording(subprocess.Popen):
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            started.append(args)
            super().__init__(args, *rest, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", Recording)
        yield started


async def test_page_data_and_stored_peaks(
    redis_server: PrivateRedis,
    storage_dir: Path,
    model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []
    real_decode = peaks_mod.decode_mono

    async def counting_decode(path: Path, rate: int = peaks_mod.RATE) -> np.ndarray:
        decoded.append(path.name)
        return await real_decode(path, rate)

    monkeypatch.setattr(peaks_mod, "decode_mono", counting_decode)
    song = write_song(tmp_path / "song.wav", Song("E", MINOR, 140, "pad", "rock"), seed=3)
    async with finished_page(redis_server, storage_dir, model_repo, tmp_path, song) as page:
        result = page.result
        # the worker decoded each stem once when it encoded it, and stored the peaks with it
        assert sorted(decoded) == sorted(s.filename for s in result.stems)
        job_dir = page.svc.storage.job_dir(result.key)
        caches = {s.filename: job_dir / f"{s.filename}.peaks.json" for s in result.stems}
        stored = {name: json.loads(path.read_text())["peaks"] for name, path in caches.items()}
        mtimes = {name: path.stat().st_mtime_ns for name, path in caches.items()}

        with no_processes(monkeypatch) as started:
            async with page.http.get(page.url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/html")
                csp = resp.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp
                # framed only by Telegram Web, where the player opens as a Mini App
                assert csp.endswith("; frame-ancestors https://web.telegram.org")
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                text = await resp.text()
            data_url = html.unescape(re.search(r'data-src="([^"]+)"', text).group(1))  # type: ignore[union-attr]
            async with page.http.get(page.base + data_url) as resp:
                assert resp.status == 200
                data = await resp.json()
            async with page.http.get(page.base + data_url) as resp:
                assert resp.status == 200
                again = await resp.json()
        # the page only read what the worker wrote: no ffmpeg, no decoding, nothing rewritten
        assert started == []
        assert len(decoded) == len(result.stems)
        assert {name: path.stat().st_mtime_ns for name, path in caches.items()} == mtimes
        assert again["stems"] == data["stems"]

        # the title is escaped, never markup
        assert html.escape(TITLE) in text
        assert "<script>alert" not in text
        assert "Model <b>htdemucs</b>" in text
        # the song's key and tempo, as the worker found them
        assert '<p class="opts music">Key <b>E minor</b> · Tempo <b>140 BPM</b></p>' in text
        assert "Links expire in 23 h" in text
        names = [s.name for s in result.stems]
        assert names == ["drums", "bass", "other", "vocals"]
        for stem in result.stems:
            assert f'data-name="{stem.name}"' in text
            assert f"Download {stem.name}" in text
        # players, downloads and the zip: every one a signed link that downloads from here
        hrefs = re.findall(r'(?:href|src)="(/files/[^"]+)"', text)
        assert result.zip is not None
        filenames = {s.filename for s in result.stems} | {result.zip.filename}
        assert {urlsplit(html.unescape(h)).path.rsplit("/", 1)[1] for h in hrefs} == filenames
        assert len(re.findall(r"<audio controls", text)) == len(names)
        assert "Download all stems" in text
        for href in set(hrefs):
            async with page.http.get(page.base + html.unescape(href)) as resp:
                assert resp.status == 200, href
                assert len(await resp.read()) > 0

        # no resource from another host: the page's files, and the vendored pitch shifter
        # (its module and processor, named in the practice panel; the module imports one more)
        static_urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', text)
        assert len(static_urls) == 3
        shifter = re.findall(r'data-(?:shifter|processor)="(/static/vendor/[^"]+)"', text)
        assert len(shifter) == 2
        module_dir = urlsplit(html.unescape(shifter[0])).path.rsplit("/", 1)[0]
        bodies = [text]
        vendored: list[str] = []
        for url in [*static_urls, *shifter, f"{module_dir}/constants.js"]:
            async with page.http.get(page.base + html.unescape(url)) as resp:
                assert resp.status == 200, url
                assert "immutable" in resp.headers["Cache-Control"]
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                if url.endswith(".js") or ".js?" in url:
                    assert resp.headers["Content-Type"].startswith("text/javascript")
                (vendored if "/vendor/" in url else bodies).append(await resp.text())
        for body in bodies:
            assert not re.search(r"(?:https?:)?//[A-Za-z0-9]", body.replace("://127.0.0.1", ""))
        loads = r"""(?:from|import\(|fetch\(|addModule\(|importScripts\()\s*['"](?:https?:)?//"""
        for body in vendored:  # a licence's address in a comment, but nothing fetched elsewhere
            assert not re.search(loads, body)

        assert data["title"] == TITLE
        assert data["model"] == "htdemucs"
        assert data["stems_mode"] == "all"
        assert data["format"] == "mp3"
        found = data["analysis"]
        assert (found["key"]["tonic"], found["key"]["mode"]) == ("E", "minor")
        assert (found["tempo"]["bpm"], found["tempo"]["source"]) == (140.0, "drums")
        assert found == result.model_dump(mode="json")["analysis"]
        assert data["expires_at"] == pytest.approx(result.expires_at)
        assert [s["name"] for s in data["stems"]] == names
        for stem in data["stems"]:
            peaks = stem["peaks"]
            assert len(peaks) == peaks_mod.BUCKETS
            assert all(0.0 <= p <= 1.0 for p in peaks)
            assert max(peaks) == 1.0
            assert peaks == stored[stem["filename"]]
            assert stem["url"].startswith(f"/files/{result.key}/")
        assert result.zip is not None and data["zip"]["filename"] == result.zip.filename

        # the peaks file is not downloadable: it is not one of the job's files
        stem = result.stems[0]
        peaks_name = f"{stem.filename}.peaks.json"
        query = sign_path(
            page.svc.storage.signing_key,
            f"/files/{result.key}/{peaks_name}",
            int(result.expires_at),
        )
        async with page.http.get(f"{page.base}/files/{result.key}/{peaks_name}?{query}") as resp:
            assert resp.status == 404


# --- bad links: published files only, no worker needed -------------------------------------


@pytest.fixture
async def published(tmp_path: Path) -> AsyncIterator[tuple[LocalStorage, Settings, str]]:
    async with published_site(tmp_path) as site:
        yield site


@contextlib.asynccontextmanager
async def published_site(tmp_path: Path) -> AsyncIterator[tuple[LocalStorage, Settings, str]]:
    """Job ``job1`` (vocals with peaks, a zip, title "Plain") and the web app serving it."""
    port = free_port()
    settings = Settings(
        storage_dir=tmp_path / "st",
        public_url=f"http://127.0.0.1:{port}",
        signing_key="page-test-key",
        link_ttl_h=24,
    )
    storage = build_storage(settings)
    src = tmp_path / "src"
    src.mkdir()
    vocals = make_audio(src / "vocals.mp3", seconds=0.5)
    (src / "stems.zip").write_bytes(b"PK")
    await storage.publish_job(
        "job1",
        [("vocals", vocals), ("all", src / "stems.zip")],
        title="Plain",
        expires_at=time.time() + 3600,
        peaks={"vocals.mp3": await peaks_mod.compute_peaks(vocals)},  # as the worker does
    )
    app = create_app(settings, storage, run_cleanup=False)
    add_page_routes(app, settings=settings, storage=storage)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield storage, settings, settings.storage.public_url
    finally:
        await runner.cleanup()


async def test_page_without_redis_shows_what_the_folder_knows(
    published: tuple[LocalStorage, Settings, str],
) -> None:
    storage, _, base = published
    query = sign_path(storage.signing_key, "/r/job1", int(time.time()) + 600)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/r/job1?{query}") as resp:
            assert resp.status == 200
            text = await resp.text()
        async with http.get(f"{base}/r/job1/data.json?{query}") as resp:
            assert resp.status == 200
            data = await resp.json()
    assert "<h1>Plain</h1>" in text
    assert "Model" not in text
    assert "MP3" in text
    assert 'class="opts music"' not in text  # no key or tempo known
    assert data["model"] is None
    assert data["analysis"] is None
    assert [s["name"] for s in data["stems"]] == ["vocals"]
    assert len(data["stems"][0]["peaks"]) == peaks_mod.BUCKETS


async def test_a_job_without_peaks_shows_its_stems_without_waveforms(
    published: tuple[LocalStorage, Settings, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job published before the worker stored peaks: players and downloads, no waveform,
    and the page decodes nothing to make up for it."""
    storage, _, base = published
    bass = make_audio(tmp_path / "bass.mp3", seconds=0.5)
    await storage.publish_job("old1", [("bass", bass)], title="Old", expires_at=time.time() + 600)
    query = sign_path(storage.signing_key, "/r/old1", int(time.time()) + 600)
    with no_processes(monkeypatch) as started:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/r/old1?{query}") as resp:
                assert resp.status == 200
                text = await resp.text()
            async with http.get(f"{base}/r/old1/data.json?{query}") as resp:
                assert resp.status == 200
                data = await resp.json()
    assert started == []
    assert "<h1>Old</h1>" in text
    assert len(re.findall(r"<audio controls", text)) == 1
    assert "Download bass" in text
    assert [(s["name"], s["peaks"]) for s in data["stems"]] == [("bass", None)]
    assert not (storage.job_dir("old1") / "bass.mp3.peaks.json").exists()


@pytest.mark.parametrize(
    ("make_query", "status", "words"),
    [
        # tampered: one hex digit of the signature changed
        (
            lambda key: re.sub(
                r"sig=(.)",
                lambda m: "sig=" + ("0" if m.group(1) != "0" else "1"),
                sign_path(key, "/r/job1", int(time.time()) + 600),
            ),
            403,
            "This link does not work",
        ),
        (lambda key: "", 403, "This link does not work"),
        # a real link for another job's page
        (lambda key: sign_path(key, "/r/job2", int(time.time()) + 600), 403, "does not work"),
        # a download link's signature does not open the page
        (lambda key: sign_path(key, "/files/job1/vocals.mp3", int(time.time()) + 600), 403, ""),
        (
            lambda key: sign_path(key, "/r/job1", int(time.time()) - 10),
            410,
            "This link has expired",
        ),
    ],
)
async def test_bad_links_get_a_friendly_page(
    published: tuple[LocalStorage, Settings, str],
    make_query: object,
    status: int,
    words: str,
) -> None:
    storage, _, base = published
    query = make_query(storage.signing_key)  # type: ignore[operator]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/r/job1?{query}") as resp:
            assert resp.status == status
            assert resp.headers["Content-Type"].startswith("text/html")
            assert resp.headers["Cache-Control"] == "no-store"
            text = await resp.text()
        async with http.get(f"{base}/r/job1/data.json?{query}") as resp:
            assert resp.status == status
            assert "error" in await resp.json()
    assert text.startswith("<!doctype html>")
    assert words in text
    if status == 410:
        assert "Stems are kept for 24 h. Send the song to the bot again" in text


async def test_gone_job_gets_a_friendly_404(
    published: tuple[LocalStorage, Settings, str],
) -> None:
    storage, _, base = published
    query = sign_path(storage.signing_key, "/r/nojob", int(time.time()) + 600)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/r/nojob?{query}") as resp:
            assert resp.status == 404
            assert "These stems are gone" in await resp.text()
        async with http.get(f"{base}/r/bad..key?{query}") as resp:
            assert resp.status == 403
        async with http.get(f"{base}/static/nope.js") as resp:
            assert resp.status == 404


def test_static_files_are_small_and_local() -> None:
    scripts = [(STATIC / name).read_text() for name in ("page.js", "player.js")]
    css = (STATIC / "page.css").read_text()
    assert all(len(js.splitlines()) < 400 for js in scripts)
    assert len(css) < 8000
    for body in (*scripts, css):
        assert not re.search(r"https?://", body)
        assert "@import" not in body and "url(" not in body
    # the vendored code comes with its licence, and its README names the package and version
    vendor = STATIC / "vendor"
    (folder,) = [p for p in vendor.iterdir() if p.is_dir()]
    assert {"LICENSE", "MPL-2.0.txt"} <= {p.name for p in folder.iterdir()}
    assert "@soundtouchjs/audio-worklet` 2.1.1" in (vendor / "README.md").read_text()
