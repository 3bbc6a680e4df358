"""What happened before a test, written straight into Redis."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from shared import jobs
from shared.schemas import (
    JobOptions,
    JobRequest,
    JobState,
    LimitTicket,
    ProgressEvent,
    ReplyTarget,
    Source,
)


async def finished_requests(
    redis: Redis,
    options: JobOptions,
    reply: Callable[[int], ReplyTarget],
    outcomes: list[tuple[str, JobState, str | None]],
) -> None:
    """One request of user ``<frontend>:<i>`` per (limits scope, final state, error code),
    finished now: what the daily stats count."""
    for i, (scope, state, code) in enumerate(outcomes):
        target = reply(i)
        user_id = f"{target.frontend}:{i}"
        request = JobRequest(
            frontend=target.frontend,
            user_id=user_id,
            reply_to="test:events",
            source=Source(kind="upload", identity=str(i) * 64, title="x"),
            options=options,
            reply=target,
            ticket=LimitTicket(user_id=user_id, scope=scope),
        )
        event = ProgressEvent(job_id="k", request_ids=[], state=state, error_code=code)
        await jobs.notify(redis, [request], event)
