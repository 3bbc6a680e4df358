"""The arq worker process: resources in ``ctx``, built in on_startup, closed in on_shutdown."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from arq import Worker
from arq.connections import ArqRedis

from shared import keys
from shared.config import Settings
from shared.errors import ModelUnavailable
from shared.storage import build_storage
from worker.cpu_runtime import prepare
from worker.download import download, download_timeout_s
from worker.models import ModelSource, no_model_hint
from worker.pipeline import JobRun, WorkerDeps
from worker.render import render
from worker.resilience import LeasedWorker
from worker.separation import ModelCache, cpu_threads, pick_device

log = logging.getLogger(__name__)


#: Tries of a separation whose worker died (SIGKILL, OOM killer, power loss) before we give up.
SEPARATION_TRIES = 3


async def separate(ctx: dict[str, Any], key: str, arq_id: str) -> None:
    """arq job: run one separation (see worker.pipeline)."""
    await JobRun(
        ctx["deps"], key, arq_id, job_try=ctx.get("job_try", 1), max_tries=SEPARATION_TRIES
    ).run()


async def on_shutdown(ctx: dict[str, Any]) -> None:
    """Let the running thread finish (cancelled jobs stop at their next check)."""
    deps: WorkerDeps | None = ctx.get("deps")
    if deps is not None:
        deps.executor.shutdown(wait=True, cancel_futures=True)


class WorkerStartupError(RuntimeError):
    """The worker cannot start; the message says what the operator should do."""


def build_worker(
    settings: Settings,
    redis: ArqRedis,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    progress_interval_s: float = 1.0,
) -> Worker:
    """An arq Worker consuming the separation queue, sharing ``redis``."""
    sep = settings.separation

    async def on_startup(ctx: dict[str, Any]) -> None:
        device = pick_device(sep.device)
        torch.set_num_threads(sep.torch_threads or cpu_threads())
        models = ModelCache(sep.model_repo, device, source=ModelSource.from_settings(sep))
        log.info("worker: loading %s on %s", sep.default_model, device)
        try:
            await asyncio.to_thread(models.preload, sep.default_model)
        except ModelUnavailable as exc:
            raise WorkerStartupError(
                no_model_hint(sep.default_model, sep.model_repo, exc.__cause__)
            ) from None
        if device == "cpu" and sep.cpu_runtime != "torch":
            # the ONNX export (or compilation) of the default model now, not in the first job
            await asyncio.to_thread(prepare, models.get(sep.default_model), sep.cpu_runtime)
        ctx["deps"] = WorkerDeps(
            settings=settings,
            redis=redis,
            storage=build_storage(settings),
            models=models,
            executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="demucs"),
            device=device,
            progress_interval_s=progress_interval_s,
        )
        log.info("worker: ready on queue %s", settings.redis.queue_name)

    return _arq_worker(
        [separate],
        settings.redis.queue_name,
        redis,
        on_startup,
        # one separation at a time: it uses every core (or the whole GPU)
        max_jobs=1,
        job_timeout=settings.limits.job_timeout_s,
        max_tries=3,
        burst=burst,
        handle_signals=handle_signals,
        lease_s=settings.limits.job_lease_s,
    )


def build_download_worker(
    settings: Settings,
    redis: ArqRedis,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    progress_interval_s: float = 1.0,
) -> Worker:
    """An arq Worker for the download queue: many downloads (and renders from kept masters,
    worker.render) at once, no model, no GPU."""
    concurrency = settings.download.download_concurrency
    queue = settings.redis.download_queue_name

    async def on_startup(ctx: dict[str, Any]) -> None:
        ctx["deps"] = WorkerDeps(
            settings=settings,
            redis=redis,
            storage=build_storage(settings),
            models=None,
            executor=ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="download"),
            device="cpu",
            progress_interval_s=progress_interval_s,
        )
        log.info("download worker: ready on queue %s", queue)

    return _arq_worker(
        [download, render],
        queue,
        redis,
        on_startup,
        max_jobs=concurrency,
        job_timeout=download_timeout_s(settings),
        max_tries=settings.download.download_tries,
        burst=burst,
        handle_signals=handle_signals,
        lease_s=settings.limits.job_lease_s,
    )


def _arq_worker(
    functions: list[Any],
    queue: str,
    redis: ArqRedis,
    on_startup: Any,
    *,
    max_jobs: int,
    job_timeout: int,
    max_tries: int,
    burst: bool,
    handle_signals: bool,
    lease_s: float,
) -> Worker:
    """What both workers share: our own results (keep_result=0), aborts, health key.

    arq gets one try more than the job allows itself: past its limit arq drops a job without
    calling it, so the job's own extra try is where the user hears that it gave up.
    A running job holds a renewed lease (see worker.resilience), so a dead worker's job is
    run again within ``lease_s``.
    """
    return LeasedWorker(
        lease_s=lease_s,
        functions=functions,
        queue_name=queue,
        redis_pool=redis,
        burst=burst,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=handle_signals,
        max_jobs=max_jobs,
        job_timeout=job_timeout,
        keep_result=0,
        max_tries=max_tries + 1,
        allow_abort_jobs=True,
        health_check_interval=30,
        health_check_key=keys.health_check(queue),
        poll_delay=0.2,
        job_completion_wait=0,
    )
