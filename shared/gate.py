"""The limits every request passes before it is queued (called by shared.core).

``admit`` checks a ban, the queue cap, the user's active jobs, their hourly window and that
minutes are left today, and counts the request (one Lua script: many requests of one user at
once cannot slip through). An upload's length is known once it is probed: ``charger`` refuses
it there, before it is stored, when it would go over the day's minutes. A request refused
later is refunded by the core; when its final event is published the active slot is given
back (shared.usage). Every refusal is counted in /metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared import jobs, limits, metrics
from shared.config import Settings
from shared.errors import Params, StembotError
from shared.i18n import Texts
from shared.schemas import LimitTicket, Source


class LimitReached(StembotError):
    """A limit refused the request; the message says which and when to try again."""

    code = "limit"

    def __init__(self, decision: limits.Decision) -> None:
        self.code = f"limit_{decision.reason}"
        self.decision = decision
        self.retry_after_s = decision.retry_after_s
        values = {
            "reason": decision.reason,
            "retry_after_s": decision.retry_after_s,
            "limit": decision.limit,
            "used": decision.used,
            "requested": decision.requested,
        }
        params = {k: v for k, v in values.items() if v is not None}
        super().__init__(detail=f"limit {decision.reason}", **params)

    @classmethod
    def render(cls, t: Texts, params: Params) -> str:
        return limits.message(limits.Decision(False, **params), t)  # type: ignore[arg-type]


def defaults(settings: Settings) -> limits.Limits:
    """The limits in force where no admin has set any (STEMBOT_JOBS_PER_HOUR...)."""
    s = settings.limits
    return limits.Limits(
        jobs_per_hour=s.jobs_per_hour,
        active_jobs=s.active_jobs,
        daily_minutes=s.daily_minutes,
        queue_cap=s.queue_cap,
        mixes_per_hour=s.mixes_per_hour,
    )


async def queue_depth(redis: Redis, settings: Settings) -> int:
    """Runs waiting or running, downloads included."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(settings.redis.queue_name)
        pipe.zcard(settings.redis.download_queue_name)
        separate, download = await pipe.execute()
    return int(separate) + int(download)


class Gate:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        frontend: str,
        *,
        base: limits.Limits | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.frontend = frontend
        #: The layer under the admins' overrides (default: from the settings).
        self.base = base or defaults(settings)

    async def admit(
        self, user_id: str, *, scope: str | None = None, admin: bool = False
    ) -> LimitTicket:
        """Count a new request of this user, or raise LimitReached."""
        exempt = admin and self.settings.limits.admins_exempt
        in_force = await limits.effective(self.redis, self.base, scope)
        depth = await queue_depth(self.redis, self.settings)
        workers = await jobs.running_count(self.redis, self.settings.redis.queue_name)
        ticket = LimitTicket(
            user_id=user_id, scope=scope, exempt=exempt, daily_minutes=in_force.daily_minutes
        )
        decision = await limits.acquire(
            self.redis,
            user_id=user_id,
            scope=scope,
            request_id=ticket.id,
            audio_minutes=None,
            queue_depth=depth,
            limits=in_force,
            exempt=exempt,
            avg_job_s=await jobs.average_job_s(self.redis),
            workers=max(1, workers),
        )
        if not decision.allowed:
            await self._refused(decision)
        return ticket

    def charger(self, ticket: LimitTicket) -> Callable[[Source], Awaitable[None]]:
        """The check an upload passes once probed: its minutes fit what is left today."""

        async def charge(source: Source) -> None:
            if source.duration_s is None:
                return
            daily = 0 if ticket.exempt else ticket.daily_minutes
            decision = await limits.charge_minutes(
                self.redis, ticket.user_id, ticket.id, source.duration_s / 60, daily_minutes=daily
            )
            if not decision.allowed:
                await self._refused(decision)

        return charge

    async def _refused(self, decision: limits.Decision) -> None:
        hit = metrics.series(
            "stembot_rate_limit_hits_total", frontend=self.frontend, limit=str(decision.reason)
        )
        await metrics.add(self.redis, {hit: 1.0})
        raise LimitReached(decision)
