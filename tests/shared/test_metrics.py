"""/metrics: counters and latency histograms every process adds to in Redis, rendered for
Prometheus by the real web server through prometheus-client, and read back here with
prometheus-client's own parsers."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bots.web import create_app
from shared import jobs, metrics
from shared.config import Settings
from shared.redis_server import PrivateRedis, free_port
from shared.schemas import JobRequest, JobState, ProgressEvent, Source, TelegramReply
from shared.storage import LocalStorage, build_storage
from tests.support.audio import make_audio
from tests.support.service import running_service
from tests.support.web import serving

Labels = tuple[tuple[str, str], ...]


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of /metrics text, as prometheus-client parses it: (name, labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return parse(text)[(name, tuple(sorted(labels.items())))]


def types(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


async def test_render_counters_and_queue_depths(redis: Redis) -> None:
    settings = Settings(queue_name="q:sep", download_queue_name="q:dl")
    await metrics.add(
        redis,
        {
            metrics.series("stembot_jobs_total", state="done"): 2,
            metrics.series("stembot_job_failures_total", reason="too_long"): 1,
            "stembot_separation_seconds_total": 1.5,
        },
    )
    await metrics.add(redis, {metrics.series("stembot_jobs_total", state="done"): 1})
    await redis.zadd("q:sep", {"a": 1, "b": 2})
    text = await metrics.render(redis, settings)
    assert parse(text) == {
        ("stembot_jobs_total", (("state", "done"),)): 3,
        ("stembot_job_failures_total", (("reason", "too_long"),)): 1,
        ("stembot_separation_seconds_total", ()): 1.5,
        # unlabelled counters exist from the start
        ("stembot_separated_audio_seconds_total", ()): 0,
        ("stembot_download_seconds_total", ()): 0,
        ("stembot_downloads_total", ()): 0,
        ("stembot_separations_total", ()): 0,
        ("stembot_renders_total", ()): 0,
        ("stembot_queue_depth", (("queue", "separate"),)): 2,
        ("stembot_queue_depth", (("queue", "download"),)): 0,
    }
    assert types(text) == {
        "stembot_jobs": "counter",
        "stembot_job_failures": "counter",
        "stembot_separation_seconds": "counter",
        "stembot_separated_audio_seconds": "counter",
        "stembot_download_seconds": "counter",
        "stembot_downloads": "counter",
        "stembot_separations": "counter",
        "stembot_renders": "counter",
        "stembot_rate_limit_hits": "counter",
        metrics.HTTP_SECONDS: "histogram",
        metrics.REQUEST_SECONDS: "histogram",
        "stembot_queue_depth": "gauge",
    }
    with pytest.raises(KeyError):
        metrics.series("stembot_unknown_total")
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.series("stembot_jobs_total", reason="too_long")
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.histogram_fields(metrics.HTTP_SECONDS, 1.0, route="/healthz")


async def test_content_type_and_openmetrics_for_a_scraper_that_asks(
    redis: Redis, tmp_path: Path
) -> None:
    settings = Settings(storage_dir=tmp_path / "st", signing_key="k")
    await metrics.add(redis, {metrics.series("stembot_jobs_total", state="failed"): 4})
    await metrics.observe(redis, metrics.HTTP_SECONDS, 0.2, route="/healthz", status="2xx")
    app = create_app(
        settings,
        build_storage(settings),
        metrics=partial(metrics.snapshot, redis, settings),
        run_cleanup=False,
    )
    # what Prometheus sends when it scrapes
    scraper = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    async with serving(app) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/metrics") as resp:
            assert resp.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
            assert resp.headers["Cache-Control"] == "no-store"
            text = await resp.text()
        async with http.get(f"{base}/metrics", headers={"Accept": scraper}) as resp:
            assert resp.headers["Content-Type"] == (
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
            )
            openmetrics = await resp.text()
    assert value(text, "stembot_jobs_total", state="failed") == 4
    families = {family.name: family for family in openmetrics_families(openmetrics)}
    assert [(s.name, s.labels, s.value) for s in families["stembot_jobs"].samples] == [
        ("stembot_jobs_total", {"state": "failed"}, 4)
    ]
    http_seconds = families[metrics.HTTP_SECONDS]
    assert http_seconds.type == "histogram"
    count = [s for s in http_seconds.samples if s.name == f"{metrics.HTTP_SECONDS}_count"]
    assert [(s.labels, s.value) for s in count] == [({"route": "/healthz", "status": "2xx"}, 1)]


async def test_metrics_endpoint_after_a_job(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        await svc.redis.flushall()
        _, stream = await svc.submit(make_audio(tmp_path / "a.wav", seconds=2.0))
        assert (await svc.events_until_final(stream))[-1].state == JobState.DONE
        app = create_app(
            svc.settings, svc.storage, metrics=partial(metrics.snapshot, svc.redis, svc.settings)
        )
        async with serving(app) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
                text = await resp.text()
    assert value(text, "stembot_jobs_total", state="done") == 1
    audio = value(text, "stembot_separated_audio_seconds_total")
    assert audio == pytest.approx(2.0, abs=0.05)
    assert value(text, "stembot_separation_seconds_total") > 0


# --- latency histograms ---------------------------------------------------------------------

HTTP = "stembot_http_request_duration_seconds"
FINAL = "stembot_request_duration_seconds"


def histogram(text: str, name: str, **labels: str) -> tuple[list[tuple[str, float]], float, float]:
    """(cumulative buckets as (le, count), sum, count) of one label set in /metrics text."""
    (family,) = (f for f in text_string_to_metric_families(text) if f.name == name)
    assert family.type == "histogram"
    mine = [s for s in family.samples if {k: v for k, v in s.labels.items() if k != "le"} == labels]
    buckets = [(s.labels["le"], s.value) for s in mine if s.name == f"{name}_bucket"]
    (total,) = (s.value for s in mine if s.name == f"{name}_sum")
    (count,) = (s.value for s in mine if s.name == f"{name}_count")
    return buckets, total, count


def app_with_metrics(settings: Settings, storage: LocalStorage, redis: Redis) -> web.Application:
    return create_app(
        settings,
        storage,
        metrics=partial(metrics.snapshot, redis, settings),
        redis=redis,  # type: ignore[arg-type]
        run_cleanup=False,
    )


async def test_http_durations_by_route_pattern_and_status_class(
    redis: Redis, tmp_path: Path
) -> None:
    settings = Settings(storage_dir=tmp_path / "st", signing_key="k")
    app = app_with_metrics(settings, build_storage(settings), redis)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/boom", boom)
    async with serving(app) as base, aiohttp.ClientSession() as http:
        started = time.perf_counter()
        for path, status in [
            ("/healthz", 200),
            ("/files/abc123/vocals.mp3?exp=1&sig=x", 403),
            ("/files/def456/drums.mp3", 403),
            ("/no/such/page", 404),
            ("/boom", 500),
        ]:
            async with http.get(base + path) as resp:
                assert resp.status == status, path
        elapsed = time.perf_counter() - started
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
        async with http.get(f"{base}/metrics") as resp:
            again = await resp.text()

    counts = {
        labels: count for (name, labels), count in parse(text).items() if name == f"{HTTP}_count"
    }
    assert counts == {
        (("route", "/boom"), ("status", "5xx")): 1,
        (("route", "/files/{job_key}/{filename}"), ("status", "4xx")): 2,
        (("route", "/healthz"), ("status", "2xx")): 1,
        (("route", "unmatched"), ("status", "4xx")): 1,
    }
    assert "abc123" not in text and "def456" not in text and "no/such" not in text
    buckets, total, count = histogram(text, HTTP, route="/files/{job_key}/{filename}", status="4xx")
    assert [le for le, _ in buckets] == [
        *("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0"),
        "+Inf",
    ]
    values = [v for _, v in buckets]
    assert values == sorted(values) and values[-1] == count == 2
    assert 0 < total < elapsed
    # the first scrape is in the second one
    assert value(again, f"{HTTP}_count", route="/metrics", status="2xx") == 1


async def test_requests_are_served_while_redis_is_down(tmp_path: Path) -> None:
    settings = Settings(storage_dir=tmp_path / "st", signing_key="k")
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(
        settings,
        build_storage(settings),
        redis=down,
        run_cleanup=False,
    )
    try:
        async with serving(app) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "ok"}
    finally:
        await down.aclose()


async def test_time_to_final_state_by_frontend_and_state(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        await svc.redis.flushall()
        song = make_audio(tmp_path / "a.wav", seconds=2.0)
        started = time.time()
        first, stream = await svc.submit(song)
        assert (await svc.events_until_final(stream))[-1].state == JobState.DONE
        elapsed = time.time() - started
        again, _ = await svc.submit(song)  # the same song: answered from the cache
        assert (first.outcome, again.outcome) == ("queued", "cached")

        # a Telegram request that failed 42 s after it was made
        failed_at = time.time()
        request = JobRequest(
            frontend="telegram",
            user_id="telegram:1",
            reply_to="test:events:tg",
            source=Source(kind="youtube", identity="dQw4w9WgXcQ", title="t"),
            options=svc.options(),
            reply=TelegramReply(chat_id=1, message_id=2, user_id=1, title="t"),
            created_at=failed_at - 42,
        )
        event = ProgressEvent(
            job_id=request.key, request_ids=[], state=JobState.FAILED, ts=failed_at
        )
        await jobs.notify(svc.redis, [request], event)

        app = app_with_metrics(svc.settings, svc.storage, svc.redis)
        async with serving(app) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                text = await resp.text()

    _, total, count = histogram(text, FINAL, frontend="test", state="done")
    assert count == 2
    assert 0 < total <= elapsed + 1  # the run, plus an instant answer from the cache
    buckets, total, count = histogram(text, FINAL, frontend="telegram", state="failed")
    assert (total, count) == (pytest.approx(42), 1)
    assert dict(buckets)["30.0"] == 0
    assert dict(buckets)["60.0"] == 1
    assert (f"{FINAL}_count", (("frontend", "telegram"), ("state", "done"))) not in parse(text)
