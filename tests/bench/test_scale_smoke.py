"""The scale bench end to end at N = 4: real processes, both fake platforms, every user served."""

from __future__ import annotations

import pytest

from bench.scale import Config, run
from bench.scale_report import summarise, table


@pytest.mark.timeout(240)
async def test_four_users_each_get_one_final_with_links() -> None:
    raw = await run(Config(users=4, workers=1, model="fast", format="wav", quiet_s=2.0, idle_s=1.0))
    result = summarise(raw)
    assert result["finished"]
    assert result["outcomes"] == {
        "users": 4,
        "one_final_with_links": 4,
        "lost": 0,
        "unfinished_at_time_limit": 0,
        "doubled": 0,
        "failed": 0,
        "final_without_links": 0,
    }
    assert result["per_job"]["jobs"] == 4
    assert result["per_job"]["runs"] == 4
    assert result["events"]["all_read"]
    assert result["ack_s"]["p99"] is not None
    assert result["platforms"]["telegram"]["sends"] >= 2
    # Discord: the deferral (outside the global limit) is not counted; the status edits are
    assert result["platforms"]["discord"]["edits"] >= 2
    assert all(a["p99"] is not None for a in result["ack_by_platform_s"].values())
    assert {"web", "worker-1", "telegram", "discord", "redis"} <= set(result["memory"])
    assert "| ack latency p50 / p95 / p99 (s) |" in table({"4": result})
    assert "| CPU s per job: workers / bots and web / Redis |" in table({"4": result})
    assert all(result["memory"][n]["cpu_s"] > 0 for n in ("worker-1", "telegram", "discord"))
