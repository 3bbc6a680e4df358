"""What a request holds while it runs, given back when it ends, for every frontend alike.

A request admitted by :mod:`shared.gate` carries its limits ticket (``JobRequest.ticket``).
Whenever a final event (done, failed, cancelled) is published
for it, :func:`on_final` frees the user's active slot and, for links, counts the audio minutes
that only the download revealed. Both are idempotent, so a repeated final event is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import keys, limits, stats
from shared.schemas import JobRequest, JobState, ProgressEvent

log = logging.getLogger(__name__)

#: Set of job keys a user requested (for /forget), kept 2 days after the last request.
USER_JOBS_TTL_S = 2 * 86400
user_jobs_key = keys.user_jobs


async def remember_job(redis: Redis, user_id: str, key: str) -> None:
    """Note that this user asked for this job (so /forget can find their stems)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(user_jobs_key(user_id), key)
        pipe.expire(user_jobs_key(user_id), USER_JOBS_TTL_S)
        await pipe.execute()


async def on_final(redis: Redis, requests: Iterable[JobRequest], event: ProgressEvent) -> None:
    """Free the active slots of requests that just ended; count minutes only links revealed."""
    if not event.state.final:
        return
    for request in requests:
        held = request.ticket
        try:
            await stats.record(redis, request, event, scope=held.scope or None if held else None)
        except RedisError as exc:  # the day's counts miss one request; delivery goes on
            log.warning("cannot count request %s in the stats: %s", request.request_id, exc)
        if held is None:
            continue
        user, ticket = held.user_id, held.id
        try:
            await limits.release(redis, user, ticket)
            result = event.result
            if (
                event.state == JobState.DONE
                and result is not None
                and request.source.kind == "youtube"
                and result.duration_s
            ):
                # the length was not known when it was admitted; the audio was processed,
                # so it counts without a check (the next request sees the total)
                await limits.charge_minutes(redis, user, ticket, result.duration_s / 60)
        except RedisError as exc:  # the slot expires by itself (limits.ACTIVE_TTL_S)
            log.warning("cannot free the limits slot of request %s: %s", request.request_id, exc)
