"""The download server through a real aiohttp client: signatures, ranges, names, errors."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import test_utils, web
from yarl import URL

from bots.web import cleanup_loop, content_disposition, create_app, run_web
from shared.config import Settings
from shared.links import sign_path
from shared.redis_server import free_port
from shared.storage import LocalStorage, build_storage

AUDIO = bytes(range(256)) * 40  # 10 KiB of distinct bytes
INVALID = "This link is invalid."
EXPIRED = "This link has expired."


@dataclass
class Site:
    storage: LocalStorage
    base: str
    http: aiohttp.ClientSession


def make_settings(tmp_path: Path, port: int, **overrides: object) -> Settings:
    return Settings(
        storage_dir=tmp_path / "st",
        public_url=f"http://127.0.0.1:{port}",
        signing_key="web-test-key",
        web_host="127.0.0.1",
        web_port=port,
        **overrides,
    )


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    port = free_port()
    settings = make_settings(tmp_path, port)
    storage = build_storage(settings)
    runner = web.AppRunner(create_app(settings, storage, run_cleanup=False))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Site(storage, settings.storage.public_url, http)
    finally:
        await runner.cleanup()


async def publish(
    site: Site, tmp: Path, title: str = "My Song", ttl: float = 3600, key: str = "job1"
) -> dict[str, str]:
    src = tmp / f"src-{key}"
    src.mkdir()
    (src / "vocals.mp3").write_bytes(AUDIO)
    (src / "drums.flac").write_bytes(b"fLaC")
    (src / "bass.wav").write_bytes(b"RIFF")
    (src / "stems.zip").write_bytes(b"PK zip")
    stems = await site.storage.publish_job(
        key,
        [(p.split(".")[0], src / p) for p in ("vocals.mp3", "drums.flac", "bass.wav")]
        + [("all", src / "stems.zip")],
        title=title,
        expires_at=time.time() + ttl,
    )
    return {s.name: s.url for s in stems}


# --- good links ---------------------------------------------------------------------------


async def test_download_with_headers(site: Site, tmp_path: Path) -> None:
    urls = await publish(site, tmp_path)
    async with site.http.get(urls["vocals"]) as resp:
        assert resp.status == 200
        assert await resp.read() == AUDIO
        assert resp.headers["Content-Type"] == "audio/mpeg"
        assert resp.headers["Content-Length"] == str(len(AUDIO))
        assert resp.headers["Content-Disposition"] == (
            'attachment; filename="My Song - vocals.mp3"; '
            "filename*=UTF-8''My%20Song%20-%20vocals.mp3"
        )
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        cache, max_age = resp.headers["Cache-Control"].split("=")
        assert cache == "private, max-age"
        assert 3590 <= int(max_age) <= 3600
    for name, content_type, body, download_name in [
        ("all", "application/zip", b"PK zip", "My Song - stems.zip"),
        ("drums", "audio/flac", b"fLaC", "My Song - drums.flac"),
        ("bass", "audio/wav", b"RIFF", "My Song - bass.wav"),
    ]:
        async with site.http.get(urls[name]) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == content_type
            assert f'filename="{download_name}"' in resp.headers["Content-Disposition"]
            assert await resp.read() == body


async def test_unicode_title_on_the_wire(site: Site, tmp_path: Path) -> None:
    urls = await publish(site, tmp_path, title='Sigur Rós "Hoppípolla"/live\\take')
    async with site.http.get(urls["vocals"]) as resp:
        assert resp.status == 200
        header = resp.headers["Content-Disposition"]
    assert header.isascii()
    assert header == (
        'attachment; filename="Sigur Ros Hoppipolla live take - vocals.mp3"; '
        "filename*=UTF-8''Sigur%20R%C3%B3s%20Hopp%C3%ADpolla%20live%20take%20-%20vocals.mp3"
    )


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [("bytes=100-199", 100, 199), ("bytes=-10", len(AUDIO) - 10, len(AUDIO) - 1)],
)
async def test_range_request(
    site: Site, tmp_path: Path, range_header: str, start: int, stop: int
) -> None:
    urls = await publish(site, tmp_path)
    async with site.http.get(urls["vocals"], headers={"Range": range_header}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes {start}-{stop}/{len(AUDIO)}"
        assert await resp.read() == AUDIO[start : stop + 1]


async def test_head(site: Site, tmp_path: Path) -> None:
    urls = await publish(site, tmp_path)
    async with site.http.head(urls["vocals"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(AUDIO))
        assert resp.headers["Content-Type"] == "audio/mpeg"
        assert "My Song - vocals.mp3" in resp.headers["Content-Disposition"]
        assert await resp.read() == b""
    async with site.http.head(urls["vocals"].replace("exp=", "exp=1")) as resp:
        assert resp.status == 403


# --- bad links ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        lambda u: u.replace("vocals.mp3", "stems.zip"),
        lambda u: u.replace("/job1/", "/job2/"),
        lambda u: u.replace("exp=", "exp=1"),
        lambda u: u.replace("exp=", "exp=0"),
        lambda u: u.split("&sig=")[0],
        lambda u: u.replace("?exp=", "?x=").replace("&sig=", "&y="),
        lambda u: u.split("?")[0],
        lambda u: u[:-4] + ("0000" if not u.endswith("0000") else "1111"),
        lambda u: u + "0",
        lambda u: u[:-64] + u[-64:].upper(),
    ],
    ids=[
        "other-file",
        "other-job",
        "exp",
        "exp-zero-padded",
        "no-sig",
        "renamed-params",
        "no-query",
        "sig",
        "sig-longer",
        "sig-upper",
    ],
)
async def test_tampered_links_are_refused(
    site: Site, tmp_path: Path, tamper: Callable[[str], str]
) -> None:
    urls = await publish(site, tmp_path)
    await publish(site, tmp_path, key="job2")  # the other job exists: only the link is wrong
    async with site.http.get(tamper(urls["vocals"])) as resp:
        assert resp.status == 403
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert await resp.text() == INVALID


async def test_expired_link(site: Site, tmp_path: Path) -> None:
    urls = await publish(site, tmp_path, ttl=-10)
    async with site.http.get(urls["vocals"]) as resp:
        assert resp.status == 403
        assert await resp.text() == EXPIRED
    async with site.http.get(urls["vocals"].replace("vocals.mp3", "stems.zip")) as resp:
        assert await resp.text() == INVALID  # expired and tampered: invalid


async def test_validly_signed_but_missing_is_404(site: Site, tmp_path: Path) -> None:
    await publish(site, tmp_path)
    soon = time.time() + 60
    for url in [
        site.storage.url_for("job1", "guitar.mp3", soon),  # no such file
        site.storage.url_for("nojob", "vocals.mp3", soon),  # no such job
        site.storage.url_for("job1", "meta.json", soon),  # there, but not a published file
    ]:
        async with site.http.get(url) as resp:
            assert resp.status == 404
            assert await resp.text() == "Not found."
    (site.storage.job_dir("job1") / "vocals.mp3").unlink()  # listed in meta, gone from disk
    async with site.http.get(site.storage.url_for("job1", "vocals.mp3", soon)) as resp:
        assert resp.status == 404
        assert await resp.text() == "Not found."


@pytest.mark.parametrize(
    "path",
    [
        "/files/job1/..%2Fmeta.json",
        "/files/job1/%2E%2E%2Fmeta.json",
        "/files/..%2F..%2F..%2Fsecret.txt/x",
        "/files/..%2Fjobs/job1",
        "/files/job1/..%5C..%5Csecret.txt",
        "/files/%2E%2E/secret.txt",
        "/files/job1/meta.json",
    ],
)
async def test_traversal_is_never_served(site: Site, tmp_path: Path, path: str) -> None:
    await publish(site, tmp_path)
    # files outside the job folders, with a meta.json that would list them
    meta = '{"title": "secret", "expires_at": 9e9, "files": {"secret.txt": "x"}}'
    for folder in (tmp_path, site.storage.root, site.storage.root / "jobs"):
        (folder / "secret.txt").write_text("secret")
        (folder / "meta.json").write_text(meta)
    unsigned = URL(f"{site.base}{path}?exp=99999999999&sig={'0' * 64}", encoded=True)
    async with site.http.get(unsigned) as resp:
        assert resp.status in (403, 404)
        assert await resp.text() in (INVALID, "Not found.", "404: Not Found")
    # even a correctly signed link (as if the key had leaked) cannot leave the job folders
    query = sign_path(site.storage.signing_key, unquote(path), int(time.time() + 60))
    async with site.http.get(URL(f"{site.base}{path}?{query}", encoded=True)) as resp:
        assert resp.status == 404
        body = await resp.read()
        assert b"secret" not in body
        assert b"title" not in body


def test_content_disposition_names() -> None:
    assert content_disposition("My Song", "vocals", ".mp3") == (
        "attachment; filename=\"My Song - vocals.mp3\"; filename*=UTF-8''My%20Song%20-%20vocals.mp3"
    )
    assert content_disposition('Björk "Jóga"/Live', "vocals", ".flac") == (
        'attachment; filename="Bjork Joga Live - vocals.flac"; '
        "filename*=UTF-8''Bj%C3%B6rk%20J%C3%B3ga%20Live%20-%20vocals.flac"
    )
    assert content_disposition("", "all", ".zip") == (
        "attachment; filename=\"track - stems.zip\"; filename*=UTF-8''track%20-%20stems.zip"
    )
    # nothing ASCII survives: the fallback still has a name
    assert content_disposition("東京", "bass", ".wav").startswith(
        "attachment; filename=\"track - bass.wav\"; filename*=UTF-8''%E6%9D%B1%E4%BA%AC%20-%20"
    )
    # control and bidi characters, line breaks, percent signs; apostrophes are fine
    header = content_disposition("Don't\r\nStop\u202egnp.exe 100%\x00", "drums", ".mp3")
    assert header == (
        'attachment; filename="Don\'t Stop gnp.exe 100 - drums.mp3"; '
        "filename*=UTF-8''Don%27t%20Stop%20gnp.exe%20100%25%20-%20drums.mp3"
    )
    assert len(content_disposition("x" * 5000, "vocals", ".mp3")) < 400


# --- health and cleanup -------------------------------------------------------------------


async def test_healthz(site: Site) -> None:
    async with site.http.get(site.base + "/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_healthz_runs_the_checks(tmp_path: Path) -> None:
    async def check_redis() -> bool:
        return True

    async def check_worker() -> bool:
        return False

    async def check_disk() -> bool:
        raise OSError("boom")

    settings = make_settings(tmp_path, 0)
    app = create_app(
        settings, build_storage(settings), checks=[check_redis, check_worker], run_cleanup=False
    )
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert await resp.json() == {
            "status": "degraded",
            "checks": {"redis": True, "worker": False},
        }
    app = create_app(settings, build_storage(settings), checks=[check_disk], run_cleanup=False)
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert await resp.json() == {"status": "degraded", "checks": {"disk": False}}


class CountingStorage(LocalStorage):
    """Counts cleanups (the first fails if asked); ``done`` is set after ``calls_wanted``."""

    def __init__(self, root: Path, calls_wanted: int, *, fail_first: bool) -> None:
        super().__init__(root, "http://x", b"k", upload_ttl_s=60)
        self.calls = 0
        self.calls_wanted = calls_wanted
        self.fail_first = fail_first
        self.done = asyncio.Event()

    async def cleanup(self, now: float | None = None) -> int:
        self.calls += 1
        if self.calls == 1 and self.fail_first:
            raise OSError("disk went away")
        removed = await super().cleanup(now)
        if self.calls >= self.calls_wanted:
            self.done.set()
        return removed


async def test_cleanup_loop_survives_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = CountingStorage(tmp_path / "st", calls_wanted=3, fail_first=True)
    (storage.tmp / "publish-dead").mkdir()
    old = time.time() - 7200
    os.utime(storage.tmp / "publish-dead", (old, old))
    caplog.set_level(logging.INFO, logger="bots.web")
    task = asyncio.create_task(cleanup_loop(storage, 0.001))
    async with asyncio.timeout(5):
        await storage.done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("storage cleanup failed")
    assert caplog.records[0].exc_info is not None
    assert messages[1:] == ["cleanup removed 1 items"]  # the loop went on (0: DEBUG, not kept)
    assert list(storage.tmp.iterdir()) == []


async def test_app_runs_the_cleanup_loop_and_stops_it(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path / "st", calls_wanted=1, fail_first=False)
    settings = make_settings(tmp_path, 0, cleanup_interval_s=3600)
    runner = web.AppRunner(create_app(settings, storage))
    await runner.setup()
    try:
        async with asyncio.timeout(5):
            await storage.done.wait()  # the first pass runs at start-up
        assert [t for t in asyncio.all_tasks() if t.get_name() == "storage-cleanup"]
    finally:
        await runner.cleanup()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "storage-cleanup"]
    assert storage.calls == 1

    assert len(create_app(settings, storage, run_cleanup=False).cleanup_ctx) == 0


class _Started(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("web server on"):
            self.event.set()


async def test_run_web_serves_until_cancelled(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, port)
    started = _Started()
    logger = logging.getLogger("bots.web")
    logger.addHandler(started)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        task = asyncio.create_task(run_web(settings, build_storage(settings)))
        async with asyncio.timeout(5):
            await started.event.wait()
    finally:
        logger.removeHandler(started)
        logger.setLevel(old_level)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert await resp.json() == {"status": "ok"}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/healthz")
