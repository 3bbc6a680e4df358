"""S3Storage on a real S3-compatible server (moto): presigned links, expiry, the web cache,
the settings, and a whole job through the service with its stems in the bucket.

The behaviours it shares with LocalStorage run against both in test_storage.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from pydantic import ValidationError

from bots.web import create_app
from shared.config import Settings
from shared.links import sign_path
from shared.redis_server import PrivateRedis
from shared.schemas import JobState
from shared.storage import build_storage, content_disposition, file_path
from shared.storage.s3 import S3Storage
from tests.support.audio import make_audio
from tests.support.s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    client,
    new_bucket,
    object_names,
    read_object,
    s3_server,
    s3_settings,
)
from tests.support.service import running_service
from tests.support.web import serving

HOUR = 3600
DAY = 24 * HOUR


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    return new_bucket(endpoint)


@pytest.fixture
def settings(endpoint: str, bucket: str, tmp_path: Path) -> Settings:
    return s3_settings(endpoint, bucket, tmp_path / "cache", link_ttl_h=6)


@pytest.fixture
def store(settings: Settings) -> S3Storage:
    built = build_storage(settings)
    assert isinstance(built, S3Storage)
    return built


def file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def amz_expiry(url: str) -> tuple[int, int]:
    """(signing time, seconds valid) of a SigV4 presigned URL, from its query."""
    query = parse_qs(urlsplit(url).query)
    signed = time.mktime(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")) - time.timezone
    return int(signed), int(query["X-Amz-Expires"][0])


async def test_links_are_presigned_gets_valid_for_the_link_lifetime(
    store: S3Storage, endpoint: str, tmp_path: Path
) -> None:
    expires_at = time.time() + store.upload_ttl_s
    files = [
        ("vocals", file(tmp_path / "vocals.mp3", b"VOCALS")),
        ("all", file(tmp_path / "stems.zip", b"ZIP")),
    ]
    stems = await store.publish_job("job1", files, title="Björk / Jóga", expires_at=expires_at)
    async with aiohttp.ClientSession() as http:
        for stem, body, ctype, ext in [
            (stems[0], b"VOCALS", "audio/mpeg", ".mp3"),
            (stems[1], b"ZIP", "application/zip", ".zip"),
        ]:
            url = urlsplit(stem.url)
            assert f"{url.scheme}://{url.netloc}" == endpoint  # straight to the bucket
            query = parse_qs(url.query)
            assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
            assert query["X-Amz-Credential"][0].startswith(f"{ACCESS_KEY}/")
            signed, valid = amz_expiry(stem.url)
            assert signed + valid == pytest.approx(expires_at, abs=2)
            assert SECRET_KEY not in stem.url
            async with http.get(stem.url) as resp:
                assert resp.status == 200
                assert await resp.read() == body
                assert resp.headers["Content-Type"] == ctype
                assert resp.headers["Content-Disposition"] == content_disposition(
                    "Björk / Jóga", stem.name, ext
                )


async def test_links_name_the_public_endpoint(endpoint: str, bucket: str, tmp_path: Path) -> None:
    settings = s3_settings(
        endpoint, bucket, tmp_path / "cache", s3_public_endpoint_url="https://s3.stems.example"
    )
    store = build_storage(settings)
    stems = await store.publish_job(
        "job1", [("vocals", file(tmp_path / "v.mp3", b"v"))], title="t", expires_at=time.time() + 60
    )
    assert stems[0].url.startswith(f"https://s3.stems.example/{bucket}/jobs/job1/v.mp3?")
    assert object_names(endpoint, bucket, "jobs/job1/") == ["meta.json", "v.mp3"]


async def test_cleanup_deletes_expired_jobs_stale_uploads_and_the_cache(
    store: S3Storage, endpoint: str, bucket: str, tmp_path: Path
) -> None:
    now = time.time()
    for key, expires in [("old", now - 1), ("new", now + HOUR)]:
        src = file(tmp_path / f"{key}.mp3", key.encode())
        await store.publish_job(key, [("a", src)], title=key, expires_at=expires)
    await store.save_upload(file(tmp_path / "u", b"upload"), "u1")
    client(endpoint).put_object(Bucket=bucket, Key="jobs/broken/a.mp3", Body=b"half")
    assert await store.find_file("new", "new.mp3") is not None  # now in the web cache
    assert sorted(p.name for p in store.jobs.iterdir()) == ["new"]

    assert await store.cleanup(now=now) == 1
    assert object_names(endpoint, bucket, "jobs/") == [
        "broken/a.mp3",
        "new/meta.json",
        "new/new.mp3",
    ]
    assert object_names(endpoint, bucket, "uploads/") == ["u1"]

    # two hours on: "new" expired (in the bucket and in the cache), "broken" is stale
    assert await store.cleanup(now=now + 2 * HOUR) == 3
    assert object_names(endpoint, bucket, "jobs/") == []
    assert list(store.jobs.iterdir()) == []
    assert object_names(endpoint, bucket, "uploads/") == ["u1"]

    # uploads go after the link lifetime (6 h here)
    assert await store.cleanup(now=now + 6 * HOUR + 60) == 1
    assert object_names(endpoint, bucket, "uploads/") == []
    assert await store.cleanup(now=now + DAY) == 0


async def test_web_server_serves_the_bucket_and_follows_a_republish(
    store: S3Storage, settings: Settings, tmp_path: Path
) -> None:
    """Our own signed /files/ links (the results page's player) serve from the cache."""
    expires = time.time() + HOUR
    await store.publish_job(
        "job1", [("vocals", file(tmp_path / "v.mp3", b"first"))], title="t", expires_at=expires
    )
    path = file_path("job1", "v.mp3")
    link = f"{path}?{sign_path(store.signing_key, path, int(expires))}"
    app = create_app(settings, store, run_cleanup=False)
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.get(base + link) as resp:
            assert resp.status == 200
            assert await resp.read() == b"first"
            assert resp.headers["Content-Disposition"] == content_disposition("t", "vocals", ".mp3")
        await store.publish_job(
            "job1", [("vocals", file(tmp_path / "v.mp3", b"second"))], title="t", expires_at=expires
        )
        async with http.get(base + link) as resp:
            assert resp.status == 200
            assert await resp.read() == b"second"
        missing = file_path("job2", "v.mp3")
        async with http.get(
            f"{base}{missing}?{sign_path(store.signing_key, missing, int(expires))}"
        ) as resp:
            assert resp.status == 404
    assert sorted(p.name for p in store.jobs.iterdir()) == ["job1"]
    assert list(store.tmp.iterdir()) == []


async def test_credentials_stay_out_of_reprs_and_logs(
    store: S3Storage, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = await store.save_upload(file(tmp_path / "in", b"x"), "abc")
    await store.fetch_upload(key, tmp_path / "out")
    await store.publish_job(
        "job1", [("a", file(tmp_path / "a.mp3", b"a"))], title="t", expires_at=time.time() + 60
    )
    assert "botocore" in caplog.text  # the client did log its requests
    for text in (caplog.text, repr(store), repr(settings.storage), str(settings.storage)):
        assert SECRET_KEY not in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3_bucket": None}, "STEMBOT_STORAGE_BACKEND=s3 needs STEMBOT_S3_BUCKET"),
        ({"link_ttl_h": 200}, "presigned S3 links last at most 7 days"),
        ({"signing_key": None}, "needs STEMBOT_SIGNING_KEY (the same on every host)"),
    ],
)
def test_incomplete_s3_settings_are_refused(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        s3_settings("http://127.0.0.1:1", "b", tmp_path, **overrides)


async def test_a_job_through_the_service_keeps_its_stems_in_the_bucket(
    redis_server: PrivateRedis,
    storage_dir: Path,
    model_repo: Path,
    endpoint: str,
    bucket: str,
    tmp_path: Path,
) -> None:
    s3 = s3_settings(endpoint, bucket, storage_dir).storage
    overrides = {
        name: getattr(s3, name)
        for name in (
            "storage_backend",
            "s3_bucket",
            "s3_endpoint_url",
            "s3_region",
            "s3_access_key_id",
            "s3_secret_access_key",
        )
    }
    async with running_service(redis_server.url, storage_dir, model_repo, **overrides) as svc:
        await svc.redis.flushall()
        _, stream = await svc.submit(make_audio(tmp_path / "song.wav", seconds=2.0))
        final = (await svc.events_until_final(stream))[-1]
        assert final.state == JobState.DONE, final
        result = final.result
        assert result is not None
        assert object_names(endpoint, bucket, "uploads/") == []  # deleted after the job
        assert result.zip is not None
        names = [s.filename for s in [*result.stems, result.zip]]
        peaks = [f"{s.filename}.peaks.json" for s in result.stems]  # the worker's waveforms
        assert object_names(endpoint, bucket, f"jobs/{result.key}/") == sorted(
            [*names, *peaks, "meta.json"]
        )
        async with aiohttp.ClientSession() as http:
            for stem in [*result.stems, result.zip]:
                assert stem.url.startswith(f"{endpoint}/{bucket}/jobs/{result.key}/")
                async with http.get(stem.url) as resp:
                    assert resp.status == 200
                    body = await resp.read()
                assert body == read_object(endpoint, bucket, f"jobs/{result.key}/{stem.filename}")
                assert len(body) == stem.size_bytes
            # the results page (on the service's web server) mirrors the job to draw it
            assert result.page_url is not None
            page = urlsplit(result.page_url)
            data_url = urljoin(result.page_url, f"{page.path}/data.json?{page.query}")
            async with http.get(data_url) as resp:
                assert resp.status == 200
                data = json.loads(await resp.text())
            assert [s["name"] for s in data["stems"]] == ["drums", "bass", "other", "vocals"]
            assert all(s["peaks"] for s in data["stems"])
            async with http.get(urljoin(svc.base_url, data["stems"][3]["url"])) as resp:
                assert resp.status == 200
                assert await resp.read() == read_object(
                    endpoint, bucket, f"jobs/{result.key}/vocals.mp3"
                )
