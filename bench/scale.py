"""`make bench-scale`: many users at once, many worker processes, the platforms' own limits.

``python -m bench.scale --users N --workers M`` runs, on this machine, what a busy community
would do to a deployment:

- a real ``redis-server``; the tests' fake Telegram Bot API and fake Discord (with a gateway),
  recording every send and edit with the time it arrived;
- M separate ``stembot worker`` processes with a stand-in model (``tiny``: demucs' real
  HTDemucs with a few channels and random weights; ``fast``: one multiplication), the web
  server, ``stembot telegram`` and ``stembot discord`` (discord.py pointed at the fake by
  bench/scale_discord.py), the queue cap and per-user limits raised;
- N users, half on each platform, each sending a different short song at the same moment.

It reports, as seen from outside (the fakes, Redis, the web server's /metrics): how fast each
user was answered (p50/p95/p99), the workers' wall time per job (their busy span x M / jobs,
from the progress streams) less the model's own time (``stembot_separation_seconds_total``),
the peak sends+edits per second at each platform against its limit, edits per user, Redis
commands per job (INFO commandstats), whether every user got exactly one final with links,
and each process's memory over the run. Results go to ``--out`` (bench/scale-results.json),
one entry per N, and the table compares them (e.g. N=10 against N=500).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bench.scale_fakes import GatewayDiscord, Users, platform_sends, song, wait_ready
from bench.scale_procs import MemorySampler, Proc, Processes
from bench.scale_report import summarise, table
from bots.telegram.store import Store
from shared.redis_server import PrivateRedis, free_port
from tests.bots.telegram.fake_bot_api import TOKEN as TG_TOKEN
from tests.bots.telegram.fake_bot_api import FakeBotApi
from tests.support.waiting import until

RESULTS = Path(__file__).with_name("scale-results.json")
DC_TOKEN = "bench-discord-token.not-a-secret"


@dataclass
class Config:
    users: int = 10
    workers: int = 2
    model: str = "tiny"
    seconds: float = 1.0
    device: str = "cpu"
    timeout_s: float = 900.0
    quiet_s: float = 4.0
    guilds: int = 8
    idle_s: float = 3.0
    keep: bool = False
    log_level: str = "WARNING"
    format: str = "mp3"
    discord_processes: int = 1
    #: no send or edit at either platform for this long, with users still waiting: lost
    stall_s: float = 300.0


def model_repo(kind: str, folder: Path) -> Path:
    if kind == "fast":
        from tests.support.fast_model import write_fast_repo

        return write_fast_repo(folder)
    from worker.demo_models import write_model_repo

    return write_model_repo(folder)


def service_env(cfg: Config, work: Path, redis_url: str, web_port: int) -> dict[str, str]:
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    return {
        "STEMBOT_REDIS_URL": redis_url,
        "STEMBOT_STORAGE_DIR": str(work / "storage"),
        "STEMBOT_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "STEMBOT_WEB_HOST": "127.0.0.1",
        "STEMBOT_WEB_PORT": str(web_port),
        "STEMBOT_SIGNING_KEY": "bench-signing-key-not-a-secret",
        "STEMBOT_MODEL_REPO": str(model_repo(cfg.model, work / "models")),
        "STEMBOT_DEVICE": cfg.device,
        "STEMBOT_TORCH_THREADS": str(threads),
        "STEMBOT_CPU_RUNTIME": "torch",
        "STEMBOT_QUEUE_CAP": str(min(10000, max(50, 2 * (cfg.users + cfg.workers)))),
        "STEMBOT_JOBS_PER_HOUR": "0",
        "STEMBOT_DAILY_MINUTES": "0",
        "STEMBOT_LOG_LEVEL": cfg.log_level,
    }


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The web server's /metrics: separation seconds and finished runs, summed."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("stembot_separation_seconds_total", "stembot_jobs_total"):
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


async def commandstats(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def healthy(session: aiohttp.ClientSession, url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError):
        async with session.get(f"{url}/healthz") as resp:
            return resp.status == 200
    return False


async def run(cfg: Config) -> dict[str, Any]:
    """One run; the raw measurements (see bench.scale_report.summarise)."""
    work = Path(tempfile.mkdtemp(prefix="stembot-scale-"))
    try:
        with PrivateRedis() as server:
            bench = Bench(cfg, work, server)
            try:
                await bench.start()
                await bench.warm_up()
                return await bench.burst()
            finally:
                await bench.stop()
    finally:
        if cfg.keep:
            print(f"work folder (logs, storage) kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


class Bench:
    """The service in its processes, the fake platforms, the users, and what is measured."""

    def __init__(self, cfg: Config, work: Path, server: PrivateRedis) -> None:
        self.cfg, self.work, self.server = cfg, work, server
        self.tg, self.dc = FakeBotApi(), GatewayDiscord()
        self.users = Users(self.tg, self.dc, guilds=cfg.guilds, fmt=cfg.format)
        self.redis = Redis.from_url(server.url)
        self.session: aiohttp.ClientSession | None = None
        web_port = free_port()
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.procs = Processes(work, service_env(cfg, work, server.url, web_port))
        self.sampler = MemorySampler({"redis": server.proc.pid} if server.proc else {})
        self.sampling: asyncio.Task[None] | None = None
        self.tail_out = work / "tail.json"
        self.songs: list[bytes] = []
        self.facts: dict[str, Any] = {"config": cfg.__dict__}
        self._said = time.monotonic()
        self._stalled = False

    async def start(self) -> None:
        cfg, procs = self.cfg, self.procs
        started, load = time.monotonic(), os.getloadavg()
        self.facts["load_avg"] = [round(load[0], 2)]
        self.session = aiohttp.ClientSession()
        await self.tg.start()
        await self.dc.start()
        print(f"starting {cfg.workers} workers, the web server and both bots", flush=True)
        procs.stembot("web", "web")
        for i in range(cfg.workers):
            procs.stembot(f"worker-{i + 1}", "worker")
        tg_env = {
            "STEMBOT_TELEGRAM_TOKEN": TG_TOKEN,
            "STEMBOT_TELEGRAM_API_URL": self.tg.url,
            "STEMBOT_TELEGRAM_LOCAL_MODE": "false",
        }
        procs.stembot("telegram", "telegram", env=tg_env)
        dc_cmd = [sys.executable, "-m", "bench.scale_discord", self.dc.url]
        shards = cfg.discord_processes
        self.dc.recommended_shards = shards
        for k in range(shards):
            dc_env = {"STEMBOT_DISCORD_TOKEN": DC_TOKEN}
            if shards > 1:  # one shard per process
                dc_env |= {"STEMBOT_DISCORD_SHARD_COUNT": str(shards)}
                dc_env |= {"STEMBOT_DISCORD_SHARD_IDS": str(k)}
            procs.start("discord" + (f"-{k + 1}" if shards > 1 else ""), dc_cmd, env=dc_env)
        procs.start(
            "tail", [sys.executable, "-m", "bench.scale_tail", self.server.url, str(self.tail_out)]
        )
        self.sampler.pids |= {p.name: p.popen.pid for p in procs.procs} | {"bench": os.getpid()}
        self.sampling = asyncio.create_task(self.sampler.run())
        # meanwhile: every user's song, and the Telegram users' saved "4 stems" (no question)
        self.songs = [song(i, cfg.seconds) for i in range(cfg.users + cfg.workers)]
        store = Store(self.redis)
        for i in range(0, cfg.users + cfg.workers, 2):
            await store.set_pref(Users.tg_id(i), "mode", "4")
            await store.set_pref(Users.tg_id(i), "format", cfg.format)
        await wait_ready(self.tg, self.dc, shards=shards, within_s=180, alive=procs.check)
        session = self.session
        await until(lambda: healthy(session, self.web_url), timeout_s=60, what="the web server")
        self.facts["startup_s"] = round(time.monotonic() - started, 1)
        print(f"ready in {self.facts['startup_s']} s", flush=True)

    async def warm_up(self) -> None:
        """One song per worker (models loaded, threads started), then the Redis traffic of
        the idle service (workers polling, bots reading their streams): not measured."""
        cfg, started = self.cfg, time.monotonic()
        warm = [cfg.users + i for i in range(cfg.workers)]
        who = [await self.users.send(i, self.songs[i]) for i in warm]
        await until(lambda: self._over(who), timeout_s=300, what="the warm-up songs")
        self.facts["warmup_s"] = round(time.monotonic() - started, 1)
        before = await commandstats(self.redis)
        idle_started = time.monotonic()
        await asyncio.sleep(cfg.idle_s)  # a measuring window, not a wait for an event
        after = await commandstats(self.redis)
        spent = time.monotonic() - idle_started
        self.idle_rate = {
            k: (v - before.get(k, 0) - (k == "info")) / spent for k, v in after.items()
        }

    async def burst(self) -> dict[str, Any]:
        """Every user sends their song at once; until each sees an outcome, then quiet."""
        cfg, facts = self.cfg, self.facts
        assert self.session is not None
        metrics_before = await scrape(self.session, self.web_url)
        stats_before = await commandstats(self.redis)
        self._tail().popen.send_signal(signal.SIGUSR1)  # its own commands: counted from now
        self.sampler.sample()
        self.sampler.mark = started = time.monotonic()
        facts["burst_wall"] = time.time()
        print(f"{cfg.users} users send their songs", flush=True)
        sends = (self.users.send(i, self.songs[i]) for i in range(cfg.users))
        who = list(await asyncio.gather(*sends))
        facts["send_s"] = round(time.monotonic() - started, 3)
        facts["finished"], facts["stalled"] = True, False
        try:
            await until(
                lambda: self._settled(who),
                timeout_s=cfg.timeout_s,
                what="every user's outcome",
                every_s=0.25,
            )
        except AssertionError as exc:
            print(f"  {exc}", flush=True)
            facts["finished"] = False
        if self._stalled:
            print(f"  nothing was sent for {cfg.stall_s:g} s: the rest are lost", flush=True)
            facts["stalled"] = True
        facts["all_over_s"] = round(time.monotonic() - started, 3)
        if facts["finished"]:  # anything still on its way (a second final is a fault) arrives
            await until(
                lambda: time.monotonic() - self._last_send() > cfg.quiet_s,
                timeout_s=120,
                what="the platforms to be quiet",
                every_s=0.2,
            )
        stats_after = await commandstats(self.redis)
        measured_s = time.monotonic() - started
        facts["metrics_before"] = metrics_before
        facts["metrics_after"] = await scrape(self.session, self.web_url)
        self.sampler.sample()
        facts["commands"] = {
            k: v - stats_before.get(k, 0)
            for k, v in stats_after.items()
            if v != stats_before.get(k)
        }
        facts["bench_commands"] = 1  # its INFO after the run
        facts["idle_commands"] = {
            k: round(v * measured_s, 1) for k, v in self.idle_rate.items() if v > 0
        }
        facts["load_avg"].append(round(os.getloadavg()[0], 2))
        facts["tail"] = await self._stop_tail()
        seen = self.users.read()
        facts["users"] = [seen[w] for w in who]
        facts["platforms"] = platform_sends(self.tg, self.dc, since=started)
        facts["memory"] = self.sampler.summary()
        return facts

    def _tail(self) -> Proc:
        return next(p for p in self.procs.procs if p.name == "tail")

    async def _stop_tail(self) -> dict[str, Any]:
        tail = self._tail()
        tail.popen.send_signal(signal.SIGTERM)
        await asyncio.to_thread(tail.popen.wait, 120)
        return dict(json.loads(self.tail_out.read_text()))

    def _over(self, who: list[str]) -> bool:
        self.procs.check()
        return self.users.over(who) == len(who)

    def _settled(self, who: list[str]) -> bool:
        """Every user has an outcome, or the platforms have been quiet for ``stall_s`` (the
        service will not answer the rest); says how far it is every half minute."""
        done = self._over(who)
        now = time.monotonic()
        if now - self._said >= 30:
            self._said = now
            print(f"  {self.users.over(who)} of {len(who)} users have their outcome", flush=True)
        self._stalled = not done and now - self._last_send() > self.cfg.stall_s
        return done or self._stalled

    def _last_send(self) -> float:
        tg, dc = self.tg.calls, self.dc.calls
        last_tg = next((c.at for c in reversed(tg) if c.method != "getUpdates"), 0.0)
        return max(last_tg, dc[-1].at if dc else 0.0)

    async def stop(self) -> None:
        if self.sampling is not None:
            self.sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sampling
        if self.session is not None:
            await self.session.close()
        codes = await asyncio.to_thread(self.procs.stop)
        print(f"stopped (exit code, seconds): {codes}", flush=True)
        await self.redis.aclose()
        await self.tg.stop()
        await self.dc.stop()


def machine() -> dict[str, Any]:
    from bench.__main__ import machine as bench_machine

    return bench_machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10, help="N: users, half on each platform")
    parser.add_argument("--workers", type=int, default=2, help="M: worker processes")
    parser.add_argument("--model", choices=["tiny", "fast"], default="tiny")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each song")
    parser.add_argument("--format", default="mp3", choices=["mp3", "flac", "wav"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument(
        "--discord-processes",
        type=int,
        default=1,
        help="Discord bot processes, one shard each (STEMBOT_DISCORD_SHARD_COUNT/_IDS)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="most seconds for the run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--log-level", default="WARNING", help="the processes' STEMBOT_LOG_LEVEL")
    args = parser.parse_args()
    cfg = Config(
        users=args.users,
        workers=args.workers,
        model=args.model,
        seconds=args.seconds,
        device=args.device,
        timeout_s=args.timeout,
        keep=args.keep,
        log_level=args.log_level,
        format=args.format,
        discord_processes=args.discord_processes,
    )
    raw = asyncio.run(run(cfg))
    result = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python -m bench.scale", *sys.argv[1:]]),
        **summarise(raw),
    }
    saved: dict[str, Any] = {}
    if args.out.exists():
        saved = json.loads(args.out.read_text())
    runs = saved.setdefault("runs", {})
    runs[str(cfg.users)] = result
    if not args.no_save:
        args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(table(runs))
    if not args.no_save:
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
