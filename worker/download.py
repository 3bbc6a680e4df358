"""The download stage of a YouTube run, on its own arq queue.

Downloads are network-bound: they run in a worker of their own (many at once, no GPU slot
held), so a GPU worker keeps separating while the next song downloads. When the audio is
stored, the stage records it on the job and queues the separation stage.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from shared import jobs, metrics, places
from shared.config import Settings
from shared.errors import InternalError
from shared.schemas import JobRequest, JobResult, JobState, ProgressEvent
from worker import youtube
from worker.pipeline import JobRun, WorkerDeps

log = logging.getLogger(__name__)


def download_timeout_s(settings: Settings) -> int:
    """Probe + download of a 10-minute track; a stuck transfer is cut by the socket timeout."""
    return max(300, settings.limits.job_timeout_s // 4)


class DownloadRun(JobRun):
    stage_suffix = jobs.DOWNLOAD_SUFFIX

    @property
    def queue_name(self) -> str:
        return self.deps.settings.redis.download_queue_name

    @property
    def timeout_s(self) -> int:
        return download_timeout_s(self.deps.settings)

    def net_options(self) -> dict[str, Any]:
        dl = self.deps.settings.download
        return {
            "timeout_s": dl.download_socket_timeout_s,
            "retry_sleep_s": dl.download_retry_backoff_s / 5,
            "cookies_file": dl.ytdlp_cookies_file,
            "proxy": dl.ytdlp_proxy.get_secret_value() if dl.ytdlp_proxy else None,
        }

    async def _work(self, spec: JobRequest, workdir: Path) -> JobResult | None:
        settings, storage, redis = self.deps.settings, self.deps.storage, self.deps.redis
        source = spec.source
        if source.kind != "youtube":
            raise InternalError()
        limits = settings.limits
        await self.report(JobState.DOWNLOADING, 0.0)
        video = await self.in_thread(
            youtube.probe_video,
            source.identity,
            max_duration_s=limits.max_duration_s,
            max_bytes=limits.max_upload_bytes,
            **self.net_options(),
        )
        started = time.monotonic()
        path = await self.in_thread(
            youtube.download_audio,
            video,
            workdir,
            max_bytes=limits.max_upload_bytes,
            max_duration_s=limits.max_duration_s,
            on_progress=self._on_progress(JobState.DOWNLOADING),
            should_stop=self.stop.is_set,
            **self.net_options(),
        )
        await metrics.add(
            redis,
            {
                "stembot_download_seconds_total": time.monotonic() - started,
                "stembot_downloads_total": 1.0,
            },
        )
        storage_key = await storage.save_upload(path, f"yt-{source.identity}.{self.arq_id}")
        await redis.hset(  # type: ignore[misc]
            jobs.job_key(self.key), mapping={"storage_key": storage_key, "title": video.title}
        )
        if not await self.queue_separation():
            await storage.delete(storage_key)  # cancelled while downloading
            return None
        log.info("job %s: downloaded %r, queued for separation", self.key, video.title)
        return None

    async def queue_separation(self) -> bool:
        """Hand the run on to the separation queue; False when it was cancelled meanwhile."""
        redis, queue = self.deps.redis, self.deps.settings.redis.queue_name
        self.state = JobState.QUEUED  # the ticker reports this stage no more
        if not await jobs.set_state(redis, self.key, self.arq_id, JobState.QUEUED, None):
            return False
        # Its requests hear that it waits again, and where, before it can start (so no event of
        # the separation comes first); their bots keep the place up to date from there.
        position, eta = await places.next_place(redis, queue)
        event = ProgressEvent(
            job_id=self.key, request_ids=[], state=JobState.QUEUED, position=position, eta_s=eta
        )
        await jobs.notify(redis, await jobs.waiting_requests(redis, self.key), event)
        await jobs.enqueue_fifo(redis, jobs.JOB_FUNCTION, self.key, self.arq_id, self.arq_id, queue)
        return True


async def download(ctx: dict[str, Any], key: str, arq_id: str) -> None:
    """arq job: fetch a YouTube video's audio, then queue its separation."""
    deps: WorkerDeps = ctx["deps"]
    await DownloadRun(
        deps,
        key,
        arq_id,
        job_try=ctx.get("job_try", 1),
        max_tries=deps.settings.download.download_tries,
    ).run()
