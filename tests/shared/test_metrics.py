"""/metrics: counters every worker adds to in Redis, rendered for Prometheus."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from bots.web import create_app
from shared import metrics
from shared.config import Settings
from shared.redis_server import PrivateRedis
from shared.schemas import JobState
from tests.support.audio import make_audio
from tests.support.service import running_service
from tests.support.web import serving


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
    assert 'stembot_jobs_total{state="done"} 3\n' in text
    assert 'stembot_job_failures_total{reason="too_long"} 1\n' in text
    assert "stembot_separation_seconds_total 1.5\n" in text
    assert 'stembot_queue_depth{queue="separate"} 2\n' in text
    assert 'stembot_queue_depth{queue="download"} 0\n' in text
    assert "# TYPE stembot_jobs_total counter\n" in text
    with pytest.raises(KeyError):
        metrics.series("stembot_unknown_total")


async def test_metrics_endpoint_after_a_job(
    redis_server: PrivateRedis, storage_dir: Path, model_repo: Path, tmp_path: Path
) -> None:
    async with running_service(redis_server.url, storage_dir, model_repo) as svc:
        await svc.redis.flushall()
        _, stream = await svc.submit(make_audio(tmp_path / "a.wav", seconds=2.0))
        assert (await svc.events_until_final(stream))[-1].state == JobState.DONE
        app = create_app(
            svc.settings, svc.storage, metrics=partial(metrics.render, svc.redis, svc.settings)
        )
        async with serving(app) as base, aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                text = await resp.text()
    assert 'stembot_jobs_total{state="done"} 1\n' in text
    audio = re.search(r"^stembot_separated_audio_seconds_total (\S+)$", text, re.M)
    assert audio is not None
    assert float(audio.group(1)) == pytest.approx(2.0, abs=0.05)
    spent = re.search(r"^stembot_separation_seconds_total (\S+)$", text, re.M)
    assert spent is not None
    assert float(spent.group(1)) > 0
