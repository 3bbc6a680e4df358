"""A custom mix (shared.mixes): the chosen stems of a song's kept master summed into one file.

It runs as the render stage of its job (worker.render), on the download queue, without the
model: only the chosen stems are fetched and decoded from the master, summed block by block
(each at its volume, ``JobOptions.mix_gains``) into one staged stem (which tracks its peak),
and delivered like any stems (worker.delivery): the same encoders, and the same clipping
care, demucs' rescale: a sum that goes past full scale is scaled down as a whole (by 1.01
times its peak) rather than clipped. A master found
gone or damaged fails the mix (MixExpired): a mix never runs a separation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from shared import masters, metrics, mixes
from shared.errors import MixExpired
from shared.schemas import UNITY_GAIN, JobRequest, JobResult, JobState
from worker import delivery
from worker.staging import StagedStem

if TYPE_CHECKING:
    from worker.pipeline import JobRun

log = logging.getLogger(__name__)


def sum_stems(
    stems: Mapping[str, StagedStem], target: Path, gains: Mapping[str, float] | None = None
) -> StagedStem:
    """The stems summed sample by sample into ``target`` (a staged stem: it knows its peak,
    which the encoder's rescale needs), each times its gain in ``gains`` (a factor; 1 where
    none is given); the stems' files are removed as they are used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    parts = list(stems.values())
    factors = [float((gains or {}).get(name, 1.0)) for name in stems]
    total = StagedStem(target, parts[0].channels)
    for blocks in zip(*(s.frames() for s in parts), strict=True):
        block = torch.zeros_like(blocks[0])
        for part, factor in zip(blocks, factors, strict=True):
            if factor == 1.0:
                block += part
            else:
                block.add_(part, alpha=factor)
        total.append(block.t())
    for part in parts:
        part.path.unlink(missing_ok=True)
    return total


async def render(run: JobRun, spec: JobRequest, workdir: Path) -> JobResult:
    """The mix of ``spec`` made from its song's kept master; MixExpired when there is none."""
    redis = run.deps.redis
    chosen = spec.options.mix
    assert chosen is not None
    await run.report(JobState.ENCODING)
    started = time.monotonic()
    kept = await masters.find(redis, spec.separation_key)
    if kept is None or not set(chosen) <= set(kept.files):
        log.info("job %s: the song's master is gone, no mix", run.key)
        raise MixExpired()
    stems = await delivery.read_master(run, kept, workdir, only=chosen)
    if stems is None:
        raise MixExpired()  # a mix never separates
    name = mixes.name(spec.options)
    levels = spec.options.mix_gains or (UNITY_GAIN,) * len(chosen)
    gains = {stem: level / UNITY_GAIN for stem, level in zip(chosen, levels, strict=True)}
    mixed = await run.in_thread(sum_stems, stems, workdir / "mix" / f"{name}.f32", gains)
    title = delivery.title_of(kept, spec)
    # one file: no zip (it would only double what the mix keeps)
    published, _, expires_at = await delivery.deliver(
        run, spec, {name: mixed}, workdir, kept.samplerate, title, zipped=False
    )
    await metrics.add(redis, {"stembot_renders_total": 1.0})
    log.info("job %s: mix %s made in %.1fs", run.key, name, time.monotonic() - started)
    return delivery.made_from(run, kept, spec, title, "mix", (published, None), expires_at)
