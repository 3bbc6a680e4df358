"""Service metrics kept in Redis (every process adds to them) and rendered for Prometheus.

Counters live in one Redis hash, so the web server reports what all workers did, on any
host. ``/metrics`` reads them with the live queue depths into a :class:`Snapshot`, which
prometheus-client encodes in the format the scraper asks for (its text format by default).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.asyncio import Redis

from shared import keys
from shared.config import Settings
from shared.schemas import JobRequest, JobState

METRICS_KEY = keys.METRICS

#: Counter name -> (help, label names). A labelled series is stored as "name|label=value|..."
#: (labels sorted by name), an unlabelled one as its name.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stembot_jobs_total": ("Separation runs that ended, by final state.", ("state",)),
    "stembot_job_failures_total": ("Failed runs, by reason (error code).", ("reason",)),
    "stembot_separation_seconds_total": ("Wall time spent in Demucs.", ()),
    "stembot_separated_audio_seconds_total": ("Audio duration separated.", ()),
    "stembot_separations_total": ("Demucs separations run.", ()),
    "stembot_renders_total": (
        "Results made from a kept master without Demucs (another format or stems mode).",
        (),
    ),
    "stembot_download_seconds_total": ("Wall time spent downloading sources.", ()),
    "stembot_downloads_total": ("YouTube downloads completed.", ()),
    "stembot_rate_limit_hits_total": (
        "Requests refused by a limit, by frontend and limit (banned, busy, active, hourly, daily).",
        ("frontend", "limit"),
    ),
}


HTTP_SECONDS = "stembot_http_request_duration_seconds"
REQUEST_SECONDS = "stembot_request_duration_seconds"

#: name -> (help, label names, bucket upper bounds in seconds). One label set is stored as
#: "name_bucket|<labels>|le=<bound>" (that bucket's own count, "+Inf" past the last bound;
#: cumulated when rendered) and "name_sum|<labels>".
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    HTTP_SECONDS: (
        "Web server requests, by route pattern and status class: time until the response "
        "was ready (a file body's transfer not included).",
        ("route", "status"),
        (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
    REQUEST_SECONDS: (
        "Time from a user's request to its final state, by frontend and final state "
        "(done, failed, cancelled); an answer from the cache is done at once.",
        ("frontend", "state"),
        (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
    ),
}


def histogram_fields(name: str, seconds: float, **labels: str) -> dict[str, float]:
    """The stored fields one observation adds to (see :data:`HISTOGRAMS`)."""
    _, names, bounds = HISTOGRAMS[name]
    tail = _tail(name, names, labels)
    bound = next((b for b in bounds if seconds <= b), None)
    le = "+Inf" if bound is None else f"{bound:g}"
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
    """The stored field of a counter's series (KeyError for an unknown counter)."""
    return name + _tail(name, COUNTERS[name][1], labels)


def _tail(name: str, names: tuple[str, ...], labels: dict[str, str]) -> str:
    if sorted(labels) != sorted(names):
        raise ValueError(f"{name} takes the labels {names}, not {tuple(labels)}")
    # "|" separates labels in a stored field: it may not occur in a value
    return "".join(f"|{k}={str(v).replace('|', '/')}" for k, v in sorted(labels.items()))


async def add(redis: Redis, amounts: dict[str, float]) -> None:
    """Add to counters (series names from :func:`series`)."""
    async with redis.pipeline(transaction=False) as pipe:
        for field, amount in amounts.items():
            pipe.hincrbyfloat(METRICS_KEY, field, amount)
        await pipe.execute()


class Snapshot(Collector):
    """The metrics as read from Redis at one moment, for prometheus-client's encoders."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _parse(field: str) -> tuple[str, dict[str, str]]:
    base, *labels = field.split("|")
    return base, dict(label.split("=", 1) for label in labels if "=" in label)


async def snapshot(redis: Redis, settings: Settings) -> Snapshot:
    """The counters and histograms in Redis, with the live queue depths."""
    queues = {
        "separate": settings.redis.queue_name,
        "download": settings.redis.download_queue_name,
    }
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(METRICS_KEY)
        for queue in queues.values():
            pipe.zcard(queue)
        raw, *depths = await pipe.execute()
    stored = [(*_parse(k.decode()), float(v)) for k, v in raw.items()]
    families: list[Metric] = []
    for name, (text, names) in COUNTERS.items():
        counter = CounterMetricFamily(name, text, labels=names)
        for base, labels, value in stored:
            if base == name and sorted(labels) == sorted(names):
                counter.add_metric([labels[n] for n in names], value)
        if not names and not counter.samples:
            counter.add_metric([], 0.0)  # an unlabelled counter exists from the start
        families.append(counter)
    families += _histograms(stored)
    depth = GaugeMetricFamily(
        "stembot_queue_depth", "Jobs waiting or running, by queue.", labels=("queue",)
    )
    for label, count in zip(queues, depths, strict=True):
        depth.add_metric([label], float(count))
    families.append(depth)
    return Snapshot(families)


async def render(redis: Redis, settings: Settings) -> str:
    """All metrics in Prometheus' text exposition format (version 0.0.4)."""
    return generate_latest(await snapshot(redis, settings)).decode()


def _histograms(stored: Iterable[tuple[str, dict[str, str], float]]) -> list[Metric]:
    """Each histogram's buckets (cumulative, ``+Inf`` last), ``_sum`` and ``_count``."""
    families: list[Metric] = []
    for name, (text, names, bounds) in HISTOGRAMS.items():
        buckets: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        sums: dict[tuple[str, ...], float] = defaultdict(float)
        for base, labels, value in stored:
            rest = {k: v for k, v in labels.items() if k != "le"}
            if sorted(rest) != sorted(names):
                continue
            key = tuple(rest[n] for n in names)
            if base == f"{name}_bucket" and "le" in labels:
                buckets[key][labels["le"]] = value
            elif base == f"{name}_sum":
                sums[key] = value
        family = HistogramMetricFamily(name, text, labels=names)
        for key in sorted(buckets):
            total, cumulative = 0.0, []
            for bound in [*bounds, float("inf")]:
                total += buckets[key].get("+Inf" if bound == float("inf") else f"{bound:g}", 0.0)
                cumulative.append((floatToGoString(bound), total))
            family.add_metric(list(key), cumulative, sums[key])
        families.append(family)
    return families
