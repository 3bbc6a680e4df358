"""Lua scripts: run by SHA, loaded once into a Redis that forgot them (SCRIPT FLUSH, restart),
and every script of ours goes through the one helper."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from shared import limits
from shared.lua import LuaScript

ROOT = Path(__file__).resolve().parents[2]

_INCR = LuaScript("""
return redis.call('INCRBY', KEYS[1], ARGV[1])
""")


async def calls(redis: Redis) -> dict[str, tuple[int, int]]:
    """Command -> (calls, failed calls) since the last CONFIG RESETSTAT, for script commands."""
    stats: dict[str, Any] = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (stat["calls"], stat["failed_calls"])
        for name, stat in stats.items()
        if name.startswith(("cmdstat_eval", "cmdstat_script|load"))
    }


async def test_a_script_runs_by_sha_and_is_loaded_again_after_a_script_flush(
    redis: Redis,
) -> None:
    assert await _INCR(redis, ["n"], ["2"]) == 2
    await redis.script_flush()  # what a restarted (or failed-over) Redis knows: no scripts
    await redis.config_resetstat()

    assert await _INCR(redis, ["n"], ["3"]) == 5
    assert await redis.script_exists(_INCR.sha) == [True]
    assert await _INCR(redis, ["n"], ["4"]) == 9
    # one EVALSHA refused with NOSCRIPT, one load, then only EVALSHA; the text is sent once
    assert await calls(redis) == {"evalsha": (3, 1), "script|load": (1, 0)}


async def test_callers_at_once_after_a_flush_all_get_their_answer(redis: Redis) -> None:
    await redis.script_flush()
    results = await asyncio.gather(*(_INCR(redis, ["n"], ["1"]) for _ in range(20)))
    assert sorted(results) == list(range(1, 21))
    assert await redis.get("n") == b"20"


async def test_the_limits_scripts_survive_a_script_flush(redis: Redis) -> None:
    assert (await limits.set_limit(redis, None, "jobs_per_hour", "3", "admin")).jobs_per_hour == 3
    await redis.script_flush()
    await redis.config_resetstat()
    assert (await limits.set_limit(redis, None, "jobs_per_hour", "4", "admin")).jobs_per_hour == 4
    assert [(e.old, e.new) for e in await limits.audit_log(redis)] == [("3", "4"), ("", "3")]
    assert (await calls(redis))["script|load"] == (1, 0)


def test_every_lua_script_goes_through_the_helper() -> None:
    """No EVAL, EVALSHA or register_script of our own outside shared/lua.py."""
    # (a torch model's .eval() takes no argument)
    direct = re.compile(r"\.(eval|evalsha|eval_ro|evalsha_ro|register_script|script_load)\((?!\))")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in ("shared", "worker", "bots", "stembot")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "shared" / "lua.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert found == []
