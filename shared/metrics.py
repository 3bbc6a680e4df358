"""Service metrics kept in Redis (every process adds to them) and rendered for Prometheus.

Counters live in one Redis hash, so the web server reports what all workers did, on any
host. ``/metrics`` renders them with the live queue depths in the text exposition format.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.config import Settings

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
