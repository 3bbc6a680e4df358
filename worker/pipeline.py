"""One separation run: fetch -> probe -> decode -> Demucs (+ key and tempo) -> encode
(+ waveform peaks) -> store -> report.

Heavy steps run in the worker's executor thread, never on the event loop; the loop keeps
publishing progress (at a bounded rate) and answering arq while Demucs runs. A run tells only
its own requests how it goes: the places of the runs still waiting are read where they are
shown (shared.places), so nothing a worker does grows with the queue.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from arq.connections import ArqRedis
from arq.worker import Retry
from redis.asyncio import Redis

from shared import jobs, links, masters, metrics
from shared.config import Settings
from shared.errors import Cancelled, InternalError, StembotError, TimedOut
from shared.media import probe
from shared.music import Analysis
from shared.schemas import JobRequest, JobResult, JobState, ProgressEvent
from shared.storage import Storage
from worker import analysis, audio, delivery
from worker.resilience import give_try_back, job_limit_s
from worker.separation import ModelCache, Tuning, separate_to_files
from worker.staging import StagedStem, mix_staged

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WorkerDeps:
    """What a job needs; built once in the worker's on_startup."""

    settings: Settings
    redis: ArqRedis
    storage: Storage
    #: None in a download-only worker.
    models: ModelCache | None
    executor: Executor
    device: str
    #: Seconds between two progress events of one job.
    progress_interval_s: float = 1.0


def analyse_song(wav: torch.Tensor, sample_rate: int, drums: StagedStem | None) -> Analysis:
    """Key and tempo from the decoded mix and the staged drums stem, read in place (mapped,
    not loaded: a 10-minute stem is 212 MB)."""
    stem = None
    if drums is not None and drums.length:
        mapped = np.memmap(drums.path, dtype="<f4", mode="r")
        stem = mapped.reshape(-1, drums.channels).T  # [channels, samples], as the mix
    return analysis.analyse(wav.numpy(), sample_rate, stem)


async def load_spec(redis: Redis, key: str, arq_id: str) -> JobRequest | None:
    """The request that started run ``arq_id``, with what its download stage found out
    (stored audio, video title); None when the run was cancelled, superseded or is over
    (a worker killed after the final event but before arq heard of it: its re-run skips)."""
    fields = ["arq_id", "spec", "state", "storage_key", "title"]
    raw = await redis.hmget(jobs.job_key(key), fields)  # type: ignore[misc]
    if raw[0] is None or raw[0].decode() != arq_id or raw[1] is None:
        return None
    if raw[2] is not None and JobState(raw[2].decode()).final:
        return None
    spec = JobRequest.model_validate_json(raw[1])
    found = {name: value.decode() for name, value in zip(fields[3:], raw[3:], strict=True) if value}
    if found:
        spec = spec.model_copy(update={"source": spec.source.model_copy(update=found)})
    return spec


class JobRun:
    """The separation stage of a run (the download stage subclasses it)."""

    #: Suffix of this stage's arq job id after the run id.
    stage_suffix = ""

    def __init__(
        self, deps: WorkerDeps, key: str, arq_id: str, *, job_try: int = 1, max_tries: int = 1
    ) -> None:
        self.deps = deps
        self.key = key
        self.arq_id = arq_id
        self.job_try = job_try
        self.max_tries = max_tries
        self.stop = threading.Event()
        self.state = JobState.QUEUED
        self.percent: float | None = None
        self.started = time.monotonic()
        self._last_sent: tuple[JobState, float | None] | None = None
        self._stage_started = time.monotonic()
        #: The run's time limit, scaled to the track once its length is known (arm_limit).
        self._limit: asyncio.Timeout | None = None
        #: Made from a kept master, without Demucs (its time is no separation's: no ETA).
        self.rendered = False

    # --- reporting ---------------------------------------------------------------------

    async def report(self, state: JobState, percent: float | None = None) -> None:
        if state != self.state:
            self._stage_started = time.monotonic()
            log.info(
                "job %s: %s",
                self.key,
                state.value,
                extra={"job_id": self.key, "run_id": self.arq_id, "state": state.value},
            )
        self.state, self.percent = state, percent
        await self._send()

    async def _send(self) -> None:
        if self.state == JobState.QUEUED:
            return  # not started a stage yet: positions in the queue come from the queue
        current = (self.state, None if self.percent is None else round(self.percent))
        if current == self._last_sent:
            return
        self._last_sent = current
        try:
            await self._publish_progress()
        except jobs.REDIS_DOWN as exc:  # progress is best effort; the work goes on meanwhile
            log.warning("job %s: cannot report progress (%s), trying again", self.key, exc)
            self._last_sent = None

    async def _publish_progress(self) -> None:
        redis = self.deps.redis
        if not await jobs.set_state(redis, self.key, self.arq_id, self.state, self.percent):
            return  # cancelled or superseded: the user has heard the outcome already
        eta = None
        if self.percent and self.state == JobState.SEPARATING:
            spent = time.monotonic() - self._stage_started
            eta = round(spent * (100 - self.percent) / self.percent, 1)
        requests = await jobs.waiting_requests(redis, self.key)
        event = ProgressEvent(
            job_id=self.key, request_ids=[], state=self.state, percent=self.percent, eta_s=eta
        )
        await jobs.notify(redis, requests, event)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.deps.progress_interval_s)
            await self._send()

    def _on_progress(self, state: JobState) -> Callable[[float], None]:
        def update(percent: float) -> None:  # called from the executor thread: no I/O here
            if self.state == state:
                self.percent = percent

        return update

    async def in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.deps.executor, lambda: fn(*args, **kwargs))

    # --- the run ----------------------------------------------------------------------

    async def run(self) -> None:
        redis = self.deps.redis
        spec = await load_spec(redis, self.key, self.arq_id)
        if spec is None:
            log.info("job %s: run %s superseded or cancelled, skipping", self.key, self.arq_id)
            return
        if self.job_try > self.max_tries:  # every try so far died with its worker
            gave_up = InternalError()
            log.error(
                "job %s: run %s gave up after %d tries, reference %s",
                self.key,
                self.arq_id,
                self.max_tries,
                gave_up.reference,
            )
            await self._cleanup(self._workdir(), spec, delete_source=True)
            await self._fail(gave_up, JobState.FAILED)
            return
        workdir = self._workdir()
        workdir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)  # left by a run of this job that died
        workdir.mkdir()
        ticker = asyncio.create_task(self._ticker())
        error: StembotError | None = None
        result: JobResult | None = None
        try:
            async with asyncio.timeout(None) as self._limit:  # armed once the length is known
                result = await self._work(spec, workdir)
        except asyncio.CancelledError:
            ticker.cancel()
            self.stop.set()  # the Demucs thread stops at its next segment
            log.info("job %s: run %s cancelled", self.key, self.arq_id)
            aborted = await self._was_aborted()
            timed_out = time.monotonic() - self.started >= self.timeout_s - 1
            if aborted or timed_out:
                await asyncio.shield(self._thread_idle())
                await self._cleanup(workdir, spec, delete_source=True)
                error = Cancelled() if aborted else TimedOut()
                state = JobState.CANCELLED if aborted else JobState.FAILED
                await asyncio.shield(self._fail(error, state))
            else:  # worker shutting down: arq puts the job back, keep the upload for it
                shutil.rmtree(workdir, ignore_errors=True)
                await give_try_back(redis, self.arq_id + self.stage_suffix)
            raise
        except StembotError as exc:
            if exc.transient and self.job_try < self.max_tries:
                ticker.cancel()
                await self._cleanup(workdir, spec, delete_source=False)
                base = self.deps.settings.download.download_retry_backoff_s
                delay = base * 2 ** (self.job_try - 1)
                log.warning(
                    "job %s: %s, try %d of %d again in %ss",
                    self.key,
                    exc.code,
                    self.job_try + 1,
                    self.max_tries,
                    delay,
                )
                raise Retry(defer=delay) from exc
            log.info("job %s failed: %s (%s)", self.key, exc.code, exc)
            error = exc
        except Exception:
            self.stop.set()
            await self._thread_idle()
            if self._limit is not None and self._limit.expired():
                error = TimedOut()
                log.info("job %s: over its time limit, stopped", self.key)
            else:
                error = InternalError()
                log.exception("job %s: internal error, reference %s", self.key, error.reference)
        finally:
            ticker.cancel()
        # everything temporary is gone before the user hears the outcome
        handed_over = error is None and result is None
        await self._cleanup(workdir, spec, delete_source=not handed_over)
        if error is not None:
            await self._fail(error, JobState.FAILED)
        elif result is not None:
            # renders (no model) have their own average: their ETAs are seconds
            await jobs.record_job_time(redis, time.monotonic() - self.started, render=self.rendered)
            await metrics.add(redis, {metrics.series("stembot_jobs_total", state="done"): 1.0})
            requests = await jobs.finish(redis, self.key, self.arq_id, JobState.DONE, result=result)
            done = ProgressEvent(
                job_id=self.key, request_ids=[], state=JobState.DONE, percent=100, result=result
            )
            await jobs.notify(redis, requests, done)
            log.info("job %s done in %.1fs", self.key, time.monotonic() - self.started)

    @property
    def queue_name(self) -> str:
        return self.deps.settings.redis.queue_name

    def _workdir(self) -> Path:
        return self.deps.settings.storage.storage_dir / "tmp" / (self.arq_id + self.stage_suffix)

    @property
    def timeout_s(self) -> int:
        """arq's limit for this stage; when it cancels us, the user hears "timed out"."""
        return self.deps.settings.limits.job_timeout_s

    def arm_limit(self, limit_s: float) -> float:
        """End the run ``limit_s`` after it started (arq's own timeout stays the cap);
        returns the seconds left."""
        left_s = max(0.0, min(limit_s, self.timeout_s) - (time.monotonic() - self.started))
        if self._limit is not None and limit_s < self.timeout_s:
            self._limit.reschedule(asyncio.get_running_loop().time() + left_s)
        return max(1.0, left_s)

    async def _thread_idle(self, timeout_s: float = 60.0) -> None:
        """Until the job's thread is done with what it ran when the job was stopped (Demucs
        stops at its next segment once ``stop`` is set), so that nothing writes into the work
        folder after its cleanup: the executor runs one call at a time, so a no-op queued now
        runs after it."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.in_thread(lambda: None)
        except TimeoutError:
            log.warning("job %s: its thread is still busy after %ss", self.key, timeout_s)

    async def _cleanup(self, workdir: Path, spec: JobRequest, *, delete_source: bool) -> None:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
        if delete_source and spec.source.storage_key:
            await self.deps.storage.delete(spec.source.storage_key)
        log.debug("job %s: run %s cleaned up", self.key, self.arq_id)

    async def _was_aborted(self) -> bool:
        return bool(await self.deps.redis.exists(jobs.cancel_key(self.arq_id)))

    async def _fail(self, error: StembotError, state: JobState) -> None:
        redis = self.deps.redis
        counts = {metrics.series("stembot_jobs_total", state=state.value): 1.0}
        if state == JobState.FAILED:
            counts[metrics.series("stembot_job_failures_total", reason=error.code)] = 1.0
        await metrics.add(redis, counts)
        requests = await jobs.finish(redis, self.key, self.arq_id, state, error_code=error.code)
        await jobs.notify(
            redis,
            requests,
            ProgressEvent(
                job_id=self.key,
                request_ids=[],
                state=state,
                error_code=error.code,
                error_message=error.user_message,
                error_params=error.params,
            ),
        )

    async def _analyse(
        self, wav: torch.Tensor, sample_rate: int, drums: StagedStem | None
    ) -> Analysis | None:
        """The song's key and tempo (worker.analysis), in a thread of its own; None when the
        analysis fails: the stems are what the user came for, the job goes on without."""
        try:
            return await asyncio.to_thread(analyse_song, wav, sample_rate, drums)
        except Exception:
            log.exception("job %s: key and tempo analysis failed, going on without", self.key)
            return None

    async def _work(self, spec: JobRequest, workdir: Path) -> JobResult | None:
        """The stage's work: a result, or None when the run was handed to the next stage."""
        settings, storage = self.deps.settings, self.deps.storage
        assert self.deps.models is not None, "a separation worker has models"
        options, source = spec.options, spec.source
        kept = await masters.find(self.deps.redis, spec.separation_key)
        if kept is not None and (made := await delivery.render(self, spec, kept, workdir)):
            return made  # another format of a song separated meanwhile
        await self.report(JobState.DECODING)
        if source.storage_key is None:
            raise InternalError()  # a download stage always stores the audio first
        local = await storage.fetch_upload(source.storage_key, workdir / "input")
        info = await probe(local, max_duration_s=settings.limits.max_duration_s)
        model = await self.in_thread(self.deps.models.get, options.model)
        left_s = self.arm_limit(job_limit_s(settings.limits, info.duration_s, options, model))
        wav = await self.in_thread(
            audio.decode,
            local,
            model.samplerate,
            model.audio_channels,
            src_channels=info.channels,
            demuxer=info.demuxer,
            timeout_s=min(300.0, left_s),  # a stuck ffmpeg is killed, the thread freed
        )

        await self.report(JobState.SEPARATING, 0.0)
        separation_started = time.monotonic()
        stems = await self.in_thread(
            separate_to_files,
            model,
            wav,
            workdir / "stems",
            shifts=options.shifts,
            overlap=options.overlap,
            segment=options.segment,
            device=self.deps.device,
            on_progress=self._on_progress(JobState.SEPARATING),
            should_stop=self.stop.is_set,
            tuning=Tuning.for_device(settings.separation, self.deps.device),
        )
        song = await self._analyse(wav, model.samplerate, stems.get("drums"))
        del wav
        await metrics.add(
            self.deps.redis,
            {
                "stembot_separation_seconds_total": time.monotonic() - separation_started,
                "stembot_separated_audio_seconds_total": info.duration_s,
                "stembot_separations_total": 1.0,
            },
        )
        frames = next(iter(stems.values())).length
        master_files = await delivery.write_master(self, stems, workdir, model.samplerate)
        stems = await self.in_thread(mix_staged, stems, options.stems)
        published, zipped, expires_at = await delivery.deliver(
            self, spec, stems, workdir, model.samplerate, source.title
        )
        del stems
        result = JobResult(
            key=self.key,
            title=source.title,
            model=options.model,
            stems_mode=options.stems,
            format=options.format,
            duration_s=info.duration_s,
            stems=published,
            zip=zipped,
            created_at=time.time(),
            expires_at=expires_at,
            page_url=links.page_url(
                settings.storage.public_url,
                settings.storage.signing_key_bytes(),
                self.key,
                expires_at,
            ),
            analysis=song,
        )
        if master_files is not None:
            await delivery.keep_master(
                self,
                spec,
                master_files,
                result,
                samplerate=model.samplerate,
                channels=model.audio_channels,
                frames=frames,
            )
        return result
