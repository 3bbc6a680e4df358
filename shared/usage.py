"""What a request holds while it runs, given back when it ends, for every frontend alike.

A request admitted by :mod:`shared.gate` carries its limits ticket in its context
(``limit_user``, ``limit_id``). Whenever a final event (done, failed, cancelled) is published
for it, :func:`on_final` frees the user's active slot and, for links, counts the audio minutes
that only the download revealed. Both are idempotent, so a repeated final event is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import limits, stats
from shared.schemas import JobRequest, JobState, ProgressEvent

log = logging.getLogger(__name__)

USER = "limit_user"
TICKET = "limit_id"
SCOPE = "limit_scope"
#: Set of job keys a user requested (for /forget), kept 2 days after the last request.
USER_JOBS_PREFIX = "stembot:user:"
USER_JOBS_TTL_S = 2 * 86400


def user_jobs_key(user_id: str) -> str:
    return f"{USER_JOBS_PREFIX}{user_id}:jobs"


def ticket_of(request: JobRequest) -> tuple[str, str] | None:
    """(user, ticket) of an admitted request; None for requests that bypass the limits."""
    user, ticket = request.context.get(USER), request.context.get(TICKET)
    if isinstance(user, str) and isinstance(ticket, str) and user and ticket:
        return user, ticket
    return None


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
        try:
            scope = request.context.get(SCOPE)
            await stats.record(redis, request, event, scope=scope or None)
        except RedisError as exc:  # the day's counts miss one request; delivery goes on
            log.warning("cannot count request %s in the stats: %s", request.request_id, exc)
        held = ticket_of(request)
        if held is None:
            continue
        user, ticket = held
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
