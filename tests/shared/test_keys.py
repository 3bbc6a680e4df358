"""The key layout: every builder is documented, and a real run writes nothing undocumented."""

from __future__ import annotations

import time
from fnmatch import fnmatchcase
from pathlib import Path

from shared import keys, limits
from tests.support import redis_scan
from tests.support.audio import make_audio
from tests.support.service import Service

BUILT = [
    keys.request("r1"),
    keys.job("k1"),
    keys.job_requests("k1"),
    keys.result("k1"),
    keys.master("k1"),
    keys.cancel("k1.ab12"),
    keys.queue_score("stembot:queue:separate"),
    keys.JOB_SECONDS,
    keys.RENDER_SECONDS,
    keys.user_jobs("telegram:1"),
    keys.limit_window("telegram:1"),
    keys.limit_active("telegram:1"),
    keys.limit_minutes("telegram:1", 0.0),
    keys.limit_mixes("telegram:1"),
    keys.ADMITTING,
    keys.limit_overrides(None),
    keys.limit_overrides("discord:guild:5"),
    keys.BANS,
    keys.AUDIT,
    keys.stats_day(None, "2026-01-01"),
    keys.stats_day("telegram:chat:-5", "2026-01-01"),
    keys.stats_seen("r1"),
    keys.METRICS,
    keys.events("telegram"),
    keys.events("cli:abc"),
    keys.final_parts("discord", "r1"),
    keys.waiting("telegram"),
    keys.processes("discord"),
    keys.send_budget("telegram", "123"),
    keys.send_budget("discord", "9f86d081", "c0ffee"),
    keys.telegram("prefs", 1),
    keys.telegram("active", 1),
    keys.telegram("pending", 1, 2),
    keys.telegram("message", 1, 2),
    keys.discord_commands(9, None),
    keys.discord_commands(9, 7),
    keys.api_job("r1"),
    keys.SEPARATE_QUEUE,
    keys.DOWNLOAD_QUEUE,
    keys.health_check(keys.SEPARATE_QUEUE),
    keys.arq_in_progress("k1.ab12"),
    keys.arq_retry("k1.ab12"),
    keys.ARQ_ABORT,
]


def test_every_built_key_is_in_the_layout_and_every_pattern_is_built() -> None:
    for name in BUILT:
        assert any(fnmatchcase(name, p) for p in keys.PATTERNS), name
    for pattern in keys.PATTERNS:
        if pattern.startswith(("arq:job:", "arq:result:")):
            continue  # arq writes these itself
        assert any(fnmatchcase(name, pattern) for name in BUILT), pattern


def test_the_docstring_names_every_pattern() -> None:
    doc = keys.__doc__ or ""
    for pattern in keys.PATTERNS:
        literal = pattern.split("*", 1)[0]
        assert literal in doc, pattern
    assert set(keys.KEPT_BY_FORGET) <= {p for p, per_user in keys.PATTERNS.items() if per_user}


async def test_a_real_run_writes_only_documented_keys(service: Service, tmp_path: Path) -> None:
    redis, user = service.redis, "telegram:42"
    await limits.set_limit(redis, "telegram:chat:-5", "jobs_per_hour", "3", "telegram:1")
    await limits.ban(redis, "telegram:43", "telegram:1", "spam")
    decision = await limits.acquire(
        redis,
        user_id=user,
        scope="telegram:chat:-5",
        request_id="r1",
        audio_minutes=1.5,
        queue_depth=0,
        limits=await limits.effective(redis, limits.Limits(), "telegram:chat:-5"),
    )
    assert decision.allowed
    _, stream = await service.submit(make_audio(tmp_path / "Song.wav", seconds=2.0))
    final = (await service.events_until_final(stream))[-1]
    assert final.result is not None, final

    names = {k.decode() async for k in redis.scan_iter(count=1000)}
    assert {
        keys.result(final.job_id),
        keys.job(final.job_id),
        keys.limit_window(user),
        keys.limit_minutes(user, time.time()),
        keys.BANS,
        keys.AUDIT,
        keys.METRICS,
        keys.JOB_SECONDS,
    } <= names
    assert await redis_scan.undocumented(redis, service.settings, "test:events:*") == []
