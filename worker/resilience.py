"""What keeps a worker's jobs alive through process faults: leases, Redis outages, signals.

**Leases.** arq marks a started job "in progress" for the job timeout + 10 s (an hour by
default) and re-runs the job of a dead worker only once that mark expires. Here the mark is a
lease of ``STEMBOT_JOB_LEASE_S`` (60 s) that the worker renews every third of it from its poll
loop, which keeps running while Demucs works in its executor thread. A worker that is killed
(SIGKILL, OOM killer, lost host) stops renewing, and another worker re-runs its job (arq counts
the try) within one lease. A long job is unaffected: its lease is renewed for as long as its
worker lives, and arq's timeout (``STEMBOT_JOB_TIMEOUT_S``) still bounds it.

**Redis outages.** A poll that fails because Redis is unreachable (restart, failover) is tried
again with jittered backoff (up to 0.5 s, doubling to 30 s: workers do not all come back at
once) instead of ending the worker; the job slot arq took
for a job it could not start is given back. A running job keeps working meanwhile (progress
events are best effort, see ``JobRun._send``).

**Signals.** ``stembot worker``, ``run`` and ``split`` run until SIGTERM/SIGINT (see
:func:`until_signalled`), then hand every running job back to its queue (it is re-run at once
elsewhere, and the try is not counted), stop a private Redis they started, and exit.

**Time limits.** A separation may take ``JOB_TIMEOUT_BASE_S + JOB_TIMEOUT_FACTOR x audio
seconds x shifts x models in the bag``, capped by ``JOB_TIMEOUT_S`` (see :func:`job_limit_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from arq import Worker
from redis.asyncio import Redis

from shared import keys
from shared.backoff import Backoff
from shared.config import LimitSettings
from shared.jobs import REDIS_DOWN
from shared.schemas import JobOptions

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


def job_limit_s(limits: LimitSettings, duration_s: float, options: JobOptions, model: Any) -> float:
    """Wall-clock seconds a separation of ``duration_s`` of audio may take, start to end."""
    models = len(getattr(model, "models", None) or [model])
    work = duration_s * max(1, options.shifts) * models
    return min(
        float(limits.job_timeout_s), limits.job_timeout_base_s + limits.job_timeout_factor * work
    )


async def give_try_back(redis: Redis, arq_job_id: str) -> None:
    """A job handed back on shutdown did not fail: do not count the try arq counted for it."""
    with contextlib.suppress(*REDIS_DOWN):
        await redis.decr(keys.arq_retry(arq_job_id))


class LeasedWorker(Worker):
    """An arq Worker whose running jobs hold renewed leases and that outlives Redis outages."""

    def __init__(self, *, lease_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lease_s = lease_s
        # arq sets this mark when it starts a job; renewed by heart_beat below
        self.in_progress_timeout_s = lease_s
        self._renewed = 0.0
        self._backoff = Backoff(first_s=BACKOFF_FIRST_S, max_s=BACKOFF_MAX_S)

    async def heart_beat(self) -> None:
        await super().heart_beat()
        now = time.monotonic()
        if not self.tasks or now - self._renewed < self.lease_s / 3:
            return
        lease_ms = int(self.lease_s * 1000)
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in self.tasks:  # a finished job's mark is gone: PEXPIRE does nothing
                pipe.pexpire(keys.arq_in_progress(job_id), lease_ms)
            await pipe.execute()
        self._renewed = now

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        try:
            await super().start_jobs(job_ids)
        except REDIS_DOWN:
            # arq takes a job slot before it asks Redis about the job; an error there
            # (before the job's task exists) would keep the slot taken for ever
            self.job_counter -= 1
            self.sem.release()
            raise

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            wait = self._backoff.failed()
            log.warning(
                "worker %s: Redis unreachable (%s), trying again in %.1f s",
                self.queue_name,
                exc,
                wait,
            )
            await asyncio.sleep(wait)
        else:
            if self._backoff.succeeded():
                log.info("worker %s: Redis reachable again", self.queue_name)


#: What `docker stop`, systemd and Ctrl-C send.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(Exception):
    """The process was stopped by a signal, and its clean-up has run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


async def until_signalled(main: Awaitable[T]) -> T:
    """Run ``main`` to its end, or until SIGTERM/SIGINT; then raise :class:`Stopped`.

    A signal cancels ``main``, whose ``finally`` blocks then run to their end (workers hand
    their running jobs back, a private Redis is stopped and its folder removed); a repeated
    signal meanwhile is not let in to cut that clean-up short.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            log.warning("%s again: still stopping", signal.Signals(signum).name)
            return
        received.append(signum)
        log.info("%s: stopping, handing running jobs back", signal.Signals(signum).name)
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            result = await task
        except asyncio.CancelledError:
            if not received:
                raise
        except Exception:
            if not received:
                raise
            log.exception("error while stopping")  # e.g. Redis stopped by the same signal
        if received:
            raise Stopped(received[0])
        return result
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
