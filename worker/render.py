"""The render stage of a run: a job made from its song's kept master (shared.masters).

The core queues it when the song's separation left a valid master and the job is another
format or stems mode of it. It runs on the download queue: it needs no model and no GPU
slot, only ffmpeg and the storage, so it answers in seconds even while the separation
workers are busy with long songs (on the separation queue it would wait behind them all).
A master found gone or damaged falls back to the full path: the separation queue (an
upload's bytes are still stored for it), or the download first (a YouTube link). A custom
mix (worker.mixdown) is a render too, but fails instead: it never runs a separation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared import masters
from shared.schemas import JobRequest, JobResult
from worker import delivery, mixdown
from worker.download import DownloadRun
from worker.pipeline import WorkerDeps

log = logging.getLogger(__name__)


class RenderRun(DownloadRun):
    async def _work(self, spec: JobRequest, workdir: Path) -> JobResult | None:
        if spec.options.mix is not None:
            return await mixdown.render(self, spec, workdir)  # a custom mix: never separates
        kept = await masters.find(self.deps.redis, spec.separation_key)
        if kept is not None:
            result = await delivery.render(self, spec, kept, workdir)
            if result is not None:
                return result
        log.info("job %s: no usable master, taking the full path", self.key)
        if spec.source.kind == "youtube":
            return await super()._work(spec, workdir)  # the download, then the separation
        await self.queue_separation()
        return None


async def render(ctx: dict[str, Any], key: str, arq_id: str) -> None:
    """arq job: make a job from its song's kept master (or hand it on to a separation)."""
    deps: WorkerDeps = ctx["deps"]
    await RenderRun(
        deps,
        key,
        arq_id,
        job_try=ctx.get("job_try", 1),
        max_tries=deps.settings.download.download_tries,
    ).run()
