"""Service metrics kept in Redis (every process adds to them) and rendered for Prometheus.

Counters live in one Redis hash, so the web server reports what all workers did, on any
host. ``/metrics`` renders them with the live queue depths in the text exposition format.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from redis.asyncio import Redis

from shared.config import Settings
from shared.schemas import JobRequest, JobState

METRICS_KEY = "stembot:metrics"

#: name -> (type, help). Labelled series are stored as "name|label=value".
FAMILIES: dict[str, tuple[str, str]] = {
    "stembot_jobs_total": ("counter", "Separation runs that ended, by final state."),
    "stembot_job_failures_total": ("counter", "Failed runs, by reason (error code)."),
    "stembot_separation_seconds_total": ("counter", "Wall time spent in Demucs."),
    "stembot_separated_audio_seconds_total": ("counter", "Audio duration separated."),
    "stembot_download_seconds_total": ("counter", "Wall time spent downloading sources."),
    "stembot_downloads_total": ("counter", "YouTube downloads completed."),
    "stembot_rate_limit_hits_total": (
        "counter",
        "Requests refused by a limit, by frontend and limit (banned, busy, active, hourly, daily).",
    ),
}


HTTP_SECONDS = "stembot_http_request_duration_seconds"
REQUEST_SECONDS = "stembot_request_duration_seconds"

#: name -> (help, bucket upper bounds in seconds). One label set is stored as
#: "name_bucket|<labels>|le=<bound>" (that bucket's own count, "+Inf" past the last bound;
#: cumulated when rendered) and "name_sum|<labels>".
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    HTTP_SECONDS: (
        "Web server requests, by route pattern and status class: time until the response "
        "was ready (a file body's transfer not included).",
        (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
    REQUEST_SECONDS: (
        "Time from a user's request to its final state, by frontend and final state "
        "(done, failed, cancelled); an answer from the cache is done at once.",
        (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    ),
}


def histogram_fields(name: str, seconds: float, **labels: str) -> dict[str, float]:
    """The stored fields one observation adds to (see :data:`HISTOGRAMS`)."""
    if name not in HISTOGRAMS:
        raise KeyError(name)
    bound = next((b for b in HISTOGRAMS[name][1] if seconds <= b), None)
    le = "+Inf" if bound is None else f"{bound:g}"
    # "|" separates labels in a stored field: it may not occur in a value
    tail = "".join(f"|{k}={str(v).replace('|', '/')}" for k, v in sorted(labels.items()))
    return {f"{name}_bucket{tail}|le={le}": 1.0, f"{name}_sum{tail}": seconds}


async def observe(redis: Redis, name: str, seconds: float, **labels: str) -> None:
    """Record one observation of a histogram."""
    await add(redis, histogram_fields(name, seconds, **labels))


async def observe_requests(
    redis: Redis, requests: Iterable[JobRequest], state: JobState, at: float | None = None
) -> None:
    """Requests that reached their final ``state`` (at ``at``, default now)."""
    now = time.time() if at is None else at
    amounts: dict[str, float] = defaultdict(float)
    for request in requests:
        seconds = max(0.0, now - request.created_at)
        fields = histogram_fields(
            REQUEST_SECONDS, seconds, frontend=request.frontend, state=state.value
        )
        for field, amount in fields.items():
            amounts[field] += amount
    if amounts:
        await add(redis, amounts)


def series(name: str, **labels: str) -> str:
    if name not in FAMILIES:
        raise KeyError(name)
    return name + "".join(f"|{k}={v}" for k, v in sorted(labels.items()))


async def add(redis: Redis, amounts: dict[str, float]) -> None:
    """Add to counters (series names from :func:`series`)."""
    async with redis.pipeline(transaction=False) as pipe:
        for field, amount in amounts.items():
            pipe.hincrbyfloat(METRICS_KEY, field, amount)
        await pipe.execute()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def render(redis: Redis, settings: Settings) -> str:
    """All metrics in Prometheus' text exposition format (version 0.0.4)."""
    stored = {
        k.decode(): float(v)
        for k, v in (await redis.hgetall(METRICS_KEY)).items()  # type: ignore[misc]
    }
    lines: list[str] = []
    for name, (kind, text) in FAMILIES.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for field in sorted(stored):
            base, *labels = field.split("|")
            if base != name:
                continue
            pairs = ",".join(
                f'{k}="{_escape(v)}"' for k, v in (label.split("=", 1) for label in labels)
            )
            lines.append(
                f"{name}{{{pairs}}} {stored[field]:g}" if pairs else f"{name} {stored[field]:g}"
            )
    lines += _render_histograms(stored)
    lines += [
        "# HELP stembot_queue_depth Jobs waiting or running, by queue.",
        "# TYPE stembot_queue_depth gauge",
    ]
    for label, queue in (
        ("separate", settings.redis.queue_name),
        ("download", settings.redis.download_queue_name),
    ):
        depth = await redis.zcard(queue)
        lines.append(f'stembot_queue_depth{{queue="{label}"}} {depth}')
    return "\n".join(lines) + "\n"


def _render_histograms(stored: dict[str, float]) -> list[str]:
    """Each histogram's buckets (cumulative, ``le`` last), ``_sum`` and ``_count``."""
    lines: list[str] = []
    for name, (text, bounds) in HISTOGRAMS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
        buckets: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        sums: dict[tuple[str, ...], float] = {}
        for field, value in stored.items():
            base, *labels = field.split("|")
            if base == f"{name}_bucket" and labels and labels[-1].startswith("le="):
                buckets[tuple(labels[:-1])][labels[-1][3:]] = value
            elif base == f"{name}_sum":
                sums[tuple(labels)] = value
        for key in sorted(buckets):
            pairs = [f'{k}="{_escape(v)}"' for k, v in (label.split("=", 1) for label in key)]
            total = 0.0
            for le in [*(f"{b:g}" for b in bounds), "+Inf"]:
                total += buckets[key].get(le, 0.0)
                inner = ",".join([*pairs, f'le="{le}"'])
                lines.append(f"{name}_bucket{{{inner}}} {total:g}")
            braces = f"{{{','.join(pairs)}}}" if pairs else ""
            lines.append(f"{name}_sum{braces} {sums.get(key, 0.0):g}")
            lines.append(f"{name}_count{braces} {total:g}")
    return lines
