"""`stembot split`: the command-line frontend, through the same core and queue as the bots."""

from __future__ import annotations

import getpass
import time
import uuid
from pathlib import Path
from typing import TextIO

from arq.connections import ArqRedis

from shared import events, keys
from shared.config import Settings
from shared.core import Core, Link, Song, Upload
from shared.errors import StembotError
from shared.formatting import terse
from shared.i18n import ENGLISH
from shared.intake import file_chunks
from shared.music import music_line
from shared.schemas import JobOptions, JobResult, JobState, LocalReply, ProgressEvent
from shared.storage import Storage

BAR_WIDTH = 30


class SplitFailed(Exception):
    """The job ended without stems; the message is the user-facing reason."""


class ProgressLine:
    """One updating progress line on a terminal; one line per change elsewhere."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = ""

    def show(self, event: ProgressEvent) -> None:
        text = describe(event)
        if text == self._last:
            return
        self._last = text
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            if event.state.final:
                self.out.write("\n")
        else:
            self.out.write(text + "\n")
        self.out.flush()


def describe(event: ProgressEvent) -> str:
    state = event.state
    if state == JobState.QUEUED:
        eta = f", about {terse(event.eta_s)} to go" if event.eta_s else ""
        ahead = event.position or 0
        return f"queued: {'next up' if ahead == 0 else f'{ahead} ahead of you'}{eta}"
    if state in (JobState.DOWNLOADING, JobState.SEPARATING) and event.percent is not None:
        filled = int(BAR_WIDTH * event.percent / 100)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        eta = f" ~{terse(event.eta_s)} left" if event.eta_s else ""
        return f"{state.value:<11} [{bar}] {event.percent:5.1f}%{eta}"
    if state == JobState.DONE:
        return "done"
    if state.final:
        return f"{state.value}: {event.error_message or ''}".rstrip(": ")
    return f"{state.value}..."


def result_lines(
    result: JobResult, written: dict[str, Path], *, valid_h: float, note: str = ""
) -> list[str]:
    """What a split prints at the end: the results page first (listen, mix, download: the
    best place to start), then the files written, each download link, and the song's key and
    tempo when the analysis found them."""
    lines = []
    if result.page_url:
        page = f"Results page (listen, mix, download; valid {valid_h:g} h{note})"
        lines.append(f"{page}: {result.page_url}")
    lines += [f"{name}: {path}" for name, path in written.items()]
    lines.append(f"Download links (valid {valid_h:g} h{note}):")
    everything = [result.zip] if result.zip is not None else []  # (a mix has no zip)
    lines += [f"  {stem.name}: {stem.url}" for stem in [*result.stems, *everything]]
    music = music_line(ENGLISH, result.analysis)  # (the operator's terminal is in English)
    if music:
        lines.append(f"Key and tempo: {music}")
    return lines


def looks_like_url(source: str) -> bool:
    """A link rather than a file name (the YouTube check itself is strict, in the core)."""
    lowered = source.strip().lower()
    return "://" in lowered or lowered.startswith(
        ("www.", "youtube.com", "youtu.be", "m.youtube.com", "music.youtube.com")
    )


async def split_file(
    *,
    redis: ArqRedis,
    storage: Storage,
    settings: Settings,
    source: str,
    options: JobOptions,
    out_dir: Path,
    progress: TextIO,
    timeout_s: float | None = None,
) -> tuple[JobResult, dict[str, Path]]:
    """Submit a file or a YouTube link, follow its events to the end, copy the stems out."""
    path = Path(source)
    is_url = looks_like_url(source) and not path.exists()
    if not is_url and not path.is_file():
        raise SplitFailed(f"No such file: {source}")
    reply_to = keys.events(f"cli:{uuid.uuid4().hex}")
    line = ProgressLine(progress)
    user_id = f"cli:{getpass.getuser()}"
    try:
        song: Song = Link(source) if is_url else Upload(file_chunks(path), path.name)
        accepted = await Core(redis, storage, settings).submit(
            None, song, options, LocalReply(frontend="cli"), user_id=user_id, reply_to=reply_to
        )
        result = accepted.result
        if result is None:
            line.show(accepted.first)
            result = await follow(redis, reply_to, line, timeout_s=timeout_s)
        else:
            progress.write("done (same song and options separated recently)\n")
    except StembotError as exc:
        raise SplitFailed(exc.user_message) from exc
    finally:
        await redis.delete(reply_to)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for stem in result.stems:
        dest = out_dir / stem.filename
        await storage.fetch_job_file(result.key, stem.filename, dest)
        written[stem.name] = dest
    return result, written


async def follow(
    redis: ArqRedis, stream: str, line: ProgressLine, *, timeout_s: float | None
) -> JobResult:
    """Read this run's stream until the final event."""
    last_id = "0"
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while deadline is None or time.monotonic() < deadline:
        reply = await redis.xread({stream: last_id}, block=1000, count=100)
        for _, entries in reply:
            for entry_id, fields in entries:
                last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                event = events.decode_entry(fields)
                line.show(event)
                if event.state == JobState.DONE and event.result is not None:
                    return event.result
                if event.state.final:
                    raise SplitFailed(event.error_message or f"Job {event.state.value}.")
    raise SplitFailed("Gave up waiting for the worker; is `stembot worker` running?")
