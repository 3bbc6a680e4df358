"""The scale bench's figures from one run's raw measurements, and the table comparing runs."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from bench.scale_fakes import Seen

#: The issue's goal: per-job overhead at the largest N at most this times that at the smallest.
OVERHEAD_GOAL = 1.1


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    values = sorted(values)

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, round(q * (len(values) - 1)))], 3)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": round(values[-1], 3)}


def per_job(raw: dict[str, Any]) -> dict[str, Any]:
    """Workers' wall time per job: (last final - first start) x workers / jobs, from the
    progress streams; the model's share from the web server's metrics."""
    workers = raw["config"]["workers"]
    jobs = [
        j
        for j in raw["tail"]["jobs"].values()
        if j["start"] is not None and j["final"] is not None and j["start"] >= raw["burst_wall"]
    ]
    before, after = raw["metrics_before"], raw["metrics_after"]
    runs = after.get("stembot_jobs_total", 0.0) - before.get("stembot_jobs_total", 0.0)
    model = after.get("stembot_separation_seconds_total", 0.0) - before.get(
        "stembot_separation_seconds_total", 0.0
    )
    model_s = model / runs if runs else None
    if not jobs:
        return {"jobs": 0, "runs": runs, "model_s": model_s}
    depth = by_depth(jobs, workers) if len(jobs) >= 50 else []
    span = max(j["final"] for j in jobs) - min(j["start"] for j in jobs)
    wall = span * min(workers, len(jobs)) / len(jobs)
    return {
        "jobs": len(jobs),
        "runs": runs,
        "busy_span_s": round(span, 3),
        "wall_s": round(wall, 3),
        "in_job_s": round(statistics.mean(j["final"] - j["start"] for j in jobs), 3),
        # a worker's time per job outside the job's own stages (bookkeeping on its path)
        "between_jobs_s": round(wall - statistics.mean(j["final"] - j["start"] for j in jobs), 3),
        "model_s": round(model_s, 3) if model_s is not None else None,
        "overhead_s": round(wall - model_s, 3) if model_s is not None else None,
        "by_depth": depth,
        # the same run, deep queue against short: tenths 2-3 (the first overlaps the users'
        # uploads) against the last two
        "deep_over_shallow": round(
            statistics.mean(d["wall_s"] for d in depth[1:3])
            / statistics.mean(d["wall_s"] for d in depth[-2:]),
            2,
        )
        if depth
        else None,
    }


def by_depth(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """The jobs in tenths by when they ended: how many were still to end as each tenth
    began, and the workers' wall time per job (and time in the job's own stages) in it."""
    jobs = sorted(jobs, key=lambda j: j["final"])
    n, prev = len(jobs), min(j["start"] for j in jobs)
    out = []
    for tenth in range(10):
        part = jobs[tenth * n // 10 : (tenth + 1) * n // 10]
        end = part[-1]["final"]
        out.append(
            {
                "still_to_end": n - tenth * n // 10,
                "wall_s": round((end - prev) * workers / len(part), 3),
                "in_job_s": round(statistics.mean(j["final"] - j["start"] for j in part), 3),
            }
        )
        prev = end
    return out


def outcomes(users: list[Seen], finished: bool) -> dict[str, int]:
    """Each user's outcome; without one at the end of the run, "lost", or "unfinished" when
    the run ended at its time limit."""
    waiting = sum(not u.over for u in users)
    return {
        "users": len(users),
        "one_final_with_links": sum(u.finals == 1 and u.with_links == 1 for u in users),
        "lost": waiting if finished else 0,
        "unfinished_at_time_limit": 0 if finished else waiting,
        "doubled": sum(u.finals > 1 for u in users),
        "failed": sum(bool(u.failed) and not u.finals for u in users),
        "final_without_links": sum(u.finals > u.with_links for u in users),
    }


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    cfg, users = raw["config"], raw["users"]
    by_platform: dict[str, list[Seen]] = defaultdict(list)
    for u in users:
        by_platform[u.platform].append(u)
    jobs = per_job(raw)
    # the service's own: less the bench's (its tail's reads, its last INFO)
    mine = Counter(raw["tail"]["commands"]) + Counter(info=raw["bench_commands"])
    commands = {k: v - mine.get(k, 0) for k, v in raw["commands"].items()}
    total = sum(commands.values())
    idle = raw["idle_commands"]
    # less what an idle service sends in as long (polling), command by command
    busy = {k: max(0.0, v - idle.get(k, 0.0)) for k, v in commands.items()}
    busy_total = sum(busy.values())
    n_jobs = max(1, cfg["users"])
    top = sorted(busy.items(), key=lambda kv: -kv[1])[:12]
    states = raw["tail"]["states"]
    return {
        "users": cfg["users"],
        "workers": cfg["workers"],
        "model": cfg["model"],
        "song_s": cfg["seconds"],
        "finished": raw["finished"],
        "stalled": raw.get("stalled", False),
        "burst_sent_s": raw["send_s"],
        "all_over_s": raw["all_over_s"],
        "ack_s": quantiles([u.ack_s for u in users if u.ack_s is not None]),
        "ack_by_platform_s": {
            name: quantiles([u.ack_s for u in users if u.platform == name and u.ack_s is not None])
            for name in ("telegram", "discord")
        },
        "links_s": quantiles([u.final_at - u.sent_at for u in users if u.final_at is not None]),
        "per_job": jobs,
        "edits_per_user": {
            name: {
                "mean": round(statistics.mean(u.edits for u in group), 1),
                "max": max(u.edits for u in group),
            }
            for name, group in sorted(by_platform.items())
        },
        "platforms": raw["platforms"],
        "startup_s": raw["startup_s"],
        "warmup_s": raw["warmup_s"],
        "load_avg": raw["load_avg"],
        "redis": {
            "commands": total,
            "per_job_all": round(total / n_jobs, 1),
            "idle_polling": round(sum(idle.values()), 1),
            "per_job": round(busy_total / n_jobs, 1),
            "top_per_job": {k: round(v / n_jobs, 1) for k, v in top},
        },
        "events": {
            "entries": raw["tail"]["entries"],
            "per_job": round(raw["tail"]["entries"] / (n_jobs + cfg["workers"]), 1),
            "queued_per_job": round(states.get("queued", 0) / (n_jobs + cfg["workers"]), 1),
            "all_read": raw["tail"]["complete"],
        },
        "outcomes": outcomes(users, raw["finished"]),
        "outcomes_by_platform": {
            name: outcomes(group, raw["finished"]) for name, group in sorted(by_platform.items())
        },
        "memory": raw["memory"],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(runs: dict[str, dict[str, Any]]) -> str:
    """A markdown table, one column per N (smallest first), and the overhead ratio."""
    ns = sorted(runs, key=int)
    cols = [runs[n] for n in ns]

    def row(label: str, get: Any) -> str:
        cells = []
        for r in cols:
            try:
                cells.append(get(r))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        return f"| {label} | " + " | ".join(cells) + " |"

    def q(key: str) -> Any:
        return lambda r: " / ".join(_fmt(r[key][p]) for p in ("p50", "p95", "p99"))

    def plat(name: str) -> Any:
        def cell(r: dict[str, Any]) -> str:
            p = r["platforms"][name]
            flag = "ok" if p["peak_per_s"] < p["limit_per_s"] else "OVER"
            return f"{p['peak_per_s']} ({flag})"

        return cell

    lines = [
        "| | " + " | ".join(f"N = {n}" for n in ns) + " |",
        "|---|" + "---:|" * len(ns),
        row("users (Telegram + Discord), workers", lambda r: _users(r)),
        row("load average (1 min) before / after", lambda r: " / ".join(map(str, r["load_avg"]))),
        row("burst to last outcome (s)", lambda r: _fmt(r["all_over_s"])),
        row("ack latency p50 / p95 / p99 (s)", q("ack_s")),
        row("  Telegram", lambda r: _ack(r, "telegram")),
        row("  Discord", lambda r: _ack(r, "discord")),
        row("time to links p50 / p95 / p99 (s)", q("links_s")),
        row("worker wall time per job (s)", lambda r: _fmt(r["per_job"]["wall_s"])),
        row("  of which the model (s)", lambda r: _fmt(r["per_job"]["model_s"])),
        row("  per-job overhead (s)", lambda r: _fmt(r["per_job"]["overhead_s"])),
        row("  of which between jobs (s)", lambda r: _fmt(_between(r))),
        row("per-job wall, deep queue / short (same run)", lambda r: _depth(r)),
        row("CPU s per job: workers / bots and web / Redis", lambda r: _cpu(r)),
        row("peak sends+edits/s, Telegram (limit 30)", plat("telegram")),
        row("peak sends+edits/s, Discord (limit 50)", plat("discord")),
        row("peak sends+edits/s in one Telegram chat", lambda r: _chat_peak(r)),
        row("edits per user, Telegram mean (max)", lambda r: _edits(r, "telegram")),
        row("edits per user, Discord mean (max)", lambda r: _edits(r, "discord")),
        row("Redis commands per job, less idle polling (all)", lambda r: _redis(r)),
        row("progress events per job", lambda r: _fmt(r["events"]["per_job"])),
        row("one final with links / lost / doubled / failed", lambda r: _outcomes(r)),
    ]
    names = sorted({name for r in cols for name in r["memory"]})
    for name in names:
        lines.append(row(f"RSS {name}, start / half-way / end (MB)", lambda r, n=name: _mem(r, n)))
    out = "\n".join(lines)
    if len(cols) > 1:
        small, large = cols[0]["per_job"], cols[-1]["per_job"]
        if small.get("overhead_s") and large.get("overhead_s") is not None:
            ratio = large["overhead_s"] / small["overhead_s"]
            wall = large["wall_s"] / small["wall_s"]
            goal = "met" if ratio <= OVERHEAD_GOAL else "not met"
            between = _between(cols[-1]) / max(_between(cols[0]), 0.001)
            out += (
                f"\n\nPer-job overhead at N = {ns[-1]} over N = {ns[0]}: {ratio:.2f}x "
                f"(goal <= {OVERHEAD_GOAL}x: {goal}); wall time per job: {wall:.2f}x; "
                f"time between jobs: {between:.1f}x."
            )
            model = (small.get("model_s") or 0) / max(large.get("model_s") or 0, 0.001)
            if not 1 / 1.3 <= model <= 1.3:
                out += (
                    f" The same model took {model:.2f}x as long per job at N = {ns[0]}: the "
                    "runs met different CPU contention, so their overheads compare poorly."
                )
    return out


def _between(r: dict[str, Any]) -> float:
    """Worker time per job outside the job's stages (first working state to final)."""
    return float(r["per_job"]["wall_s"] - r["per_job"]["in_job_s"])


def _depth(r: dict[str, Any]) -> str:
    """Tenths 2-3 against the last two: N x 0.9-0.7 still to end, against N x 0.2-0."""
    depth = r["per_job"].get("by_depth") or []
    if not depth:
        return "-"
    deep = statistics.mean(d["wall_s"] for d in depth[1:3])
    short = statistics.mean(d["wall_s"] for d in depth[-2:])
    return f"{deep:.2f} / {short:.2f} s = {deep / short:.2f}x"


def _cpu(r: dict[str, Any]) -> str:
    """CPU seconds per job from the burst to the end (user + system), by kind of process:
    the cost of a job, which CPU contention inflates far less than wall time."""
    jobs = r["per_job"]["jobs"]
    mem = r["memory"]

    def per_job(names: list[str]) -> str:
        return _fmt(round(sum(mem[n]["cpu_s"] for n in names) / jobs, 3))

    workers = [n for n in mem if n.startswith("worker")]
    bots = [n for n in mem if n in ("telegram", "discord", "web") or n.startswith("discord-")]
    return " / ".join((per_job(workers), per_job(bots), per_job(["redis"])))


def _users(r: dict[str, Any]) -> str:
    tg = r["outcomes"]["users"] - r["outcomes"]["users"] // 2
    return f"{tg} + {r['outcomes']['users'] // 2}, {r['workers']}"


def _redis(r: dict[str, Any]) -> str:
    return f"{_fmt(r['redis']['per_job'])} ({_fmt(r['redis']['per_job_all'])})"


def _ack(r: dict[str, Any], platform: str) -> str:
    a = r["ack_by_platform_s"][platform]
    return " / ".join(_fmt(a[p]) for p in ("p50", "p95", "p99"))


def _chat_peak(r: dict[str, Any]) -> str:
    return str(r["platforms"]["telegram"]["peak_per_chat_per_s"])


def _edits(r: dict[str, Any], platform: str) -> str:
    e = r["edits_per_user"][platform]
    return f"{_fmt(e['mean'])} ({e['max']})"


def _outcomes(r: dict[str, Any]) -> str:
    o = r["outcomes"]
    text = f"{o['one_final_with_links']} / {o['lost']} / {o['doubled']} / {o['failed']}"
    late = o.get("unfinished_at_time_limit")
    return text + (f" ({late} unfinished at the time limit)" if late else "")


def _mem(r: dict[str, Any], name: str) -> str:
    m = r["memory"].get(name)
    if not m:
        return "-"
    mid = m.get("mid_mb", m["start_mb"])
    return f"{m['start_mb']:.0f} / {mid:.0f} / {m['end_mb']:.0f}"
