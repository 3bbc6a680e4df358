"""What a run makes from stems: the files delivered (encode, waveform peaks, zip, publish),
and the lossless master a separation leaves for later formats and mixes (shared.masters).

A separation delivers the stems Demucs made, and keeps their master; a render (another
format or stems mode of a song already separated) delivers the stems decoded from that
master, without the model. Both deliver through :func:`deliver`, so their results have the
same shape: files, peaks, zip, results page.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shared import links, masters, metrics
from shared.masters import Master
from shared.schemas import JobRequest, JobResult, JobState, StemFile
from worker import audio, master, peaks
from worker.master import MasterGone
from worker.staging import StagedStem, mix_staged

if TYPE_CHECKING:
    from worker.pipeline import JobRun

log = logging.getLogger(__name__)

#: A render keeps its master this much longer than the links it is about to make.
RENDER_MARGIN_S = 600.0


def safe_title(title: str) -> str:
    """A title usable inside file names (zip entries)."""
    cleaned = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]+", " ", title).strip(" .")
    return re.sub(r"\s+", " ", cleaned)[:120] or "track"


async def deliver(
    run: JobRun,
    spec: JobRequest,
    stems: Mapping[str, StagedStem],
    workdir: Path,
    samplerate: int,
    title: str,
    *,
    zipped: bool = True,
) -> tuple[list[StemFile], StemFile | None, float]:
    """Encode the stems in the job's format (with their waveform peaks), zip them (unless
    not ``zipped``: a mix is one file) and publish them; the published stems, the zip and
    their expiry."""
    await run.report(JobState.ENCODING)
    fmt = spec.options.format
    out = workdir / "out"
    out.mkdir()
    files = await run.in_thread(audio.encode_stems, stems, out, fmt, samplerate)
    # the results page draws these; it never decodes a stem itself
    stem_peaks = await peaks.peaks_by_file(files.values())
    to_publish = list(files.items())
    if zipped:
        zip_title = safe_title(title)
        zip_path = await run.in_thread(
            audio.make_zip,
            {f"{zip_title} - {n}.{fmt.value}": p for n, p in files.items()},
            out / "stems.zip",
        )
        to_publish.append(("all", zip_path))
    expires_at = time.time() + run.deps.settings.storage.link_ttl_s
    published = await run.deps.storage.publish_job(
        run.key, to_publish, title=title, expires_at=expires_at, peaks=stem_peaks
    )
    if zipped:
        return published[:-1], published[-1], expires_at
    return published, None, expires_at


async def read_master(
    run: JobRun, kept: Master, workdir: Path, only: Sequence[str] | None = None
) -> Mapping[str, StagedStem] | None:
    """The stems of a kept master (``only`` these), decoded for a render, the master first
    extended to outlive the links about to be made (the cleanup cannot take it while it is
    read); None when it turns out gone or damaged: it is dropped, and nothing is left behind."""
    redis, settings, storage = run.deps.redis, run.deps.settings, run.deps.storage
    until = time.time() + settings.storage.link_ttl_s + RENDER_MARGIN_S
    try:
        extended = await masters.keep_until(redis, storage, kept, until)
        if extended is None:
            raise MasterGone("not in the storage")
        if only is not None:
            extended = extended.model_copy(update={"files": {n: extended.files[n] for n in only}})
        files = await master.fetch(storage, extended, workdir / "master")
        stems = await run.in_thread(master.read, files, workdir / "stems", extended)
    except MasterGone as exc:
        log.warning("job %s: its master is unusable (%s)", run.key, exc)
        await masters.drop(redis, kept)
        for folder in ("master", "stems"):
            await asyncio.to_thread(shutil.rmtree, workdir / folder, True)
        return None
    run.rendered = True
    return stems


def title_of(kept: Master, spec: JobRequest) -> str:
    """A render's title: an upload's is its own file name; a link's is the video's, which
    the song's download found."""
    return kept.result.title if spec.source.kind == "youtube" else spec.source.title


async def render(run: JobRun, spec: JobRequest, kept: Master, workdir: Path) -> JobResult | None:
    """The job made from its song's kept master, without the model; None when the master
    turns out gone or damaged (it is dropped: the caller separates instead)."""
    await run.report(JobState.ENCODING)
    started = time.monotonic()
    stems = await read_master(run, kept, workdir)
    if stems is None:
        log.info("job %s: separating instead", run.key)
        return None
    stems = await run.in_thread(mix_staged, stems, spec.options.stems)
    title = title_of(kept, spec)
    published, zipped, expires_at = await deliver(run, spec, stems, workdir, kept.samplerate, title)
    await metrics.add(run.deps.redis, {"stembot_renders_total": 1.0})
    log.info("job %s: made from its master in %.1fs", run.key, time.monotonic() - started)
    return made_from(run, kept, spec, title, spec.options.stems, (published, zipped), expires_at)


def made_from(
    run: JobRun,
    kept: Master,
    spec: JobRequest,
    title: str,
    stems_mode: str,
    published: tuple[list[StemFile], StemFile | None],
    expires_at: float,
) -> JobResult:
    """The result of a job made from a kept master: the separation's (length, key and
    tempo), with this job's key, files, expiry and page link."""
    settings = run.deps.settings
    return kept.result.model_copy(
        update={
            "key": run.key,
            "title": title,
            "stems_mode": stems_mode,
            "format": spec.options.format,
            "stems": published[0],
            "zip": published[1],
            "created_at": time.time(),
            "expires_at": expires_at,
            "page_url": links.page_url(
                settings.storage.public_url,
                settings.storage.signing_key_bytes(),
                run.key,
                expires_at,
            ),
        }
    )


async def write_master(
    run: JobRun, stems: Mapping[str, StagedStem], workdir: Path, samplerate: int
) -> dict[str, Path] | None:
    """The master of a separation's stems (worker.master), before any two-stem mix; None
    when it cannot be written: the job is delivered all the same."""
    try:
        return await run.in_thread(master.write, stems, workdir / "master", samplerate)
    except Exception:
        log.exception("job %s: cannot write the master, later formats separate again", run.key)
        return None


async def keep_master(
    run: JobRun,
    spec: JobRequest,
    files: Mapping[str, Path],
    result: JobResult,
    *,
    samplerate: int,
    channels: int,
    frames: int,
) -> None:
    """Keep the master for later formats and mixes, expiring with ``result``'s links."""
    try:
        await master.keep(
            run.deps.redis,
            run.deps.storage,
            spec.separation_key,
            files,
            result,
            samplerate=samplerate,
            channels=channels,
            frames=frames,
        )
    except Exception:
        log.exception("job %s: cannot keep the master, later formats separate again", run.key)
