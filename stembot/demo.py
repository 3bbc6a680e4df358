"""What `stembot run` does when no bot token is set: split a short generated song end to end
through the real queue and worker, so a fresh install shows it works."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

from arq.connections import ArqRedis

from bots.split import result_lines, split_file
from shared.config import Settings
from shared.intake import build_options
from shared.storage import Storage

log = logging.getLogger(__name__)

# Kick on the beat, a bass line, a melody and a hi-hat: enough for four stems to differ.
_SONG = (
    "aevalsrc='0.5*sin(2*PI*55*t)*exp(-12*mod(t,0.5))"
    "+0.25*sin(2*PI*(110+55*gt(mod(t,2),1))*t)"
    "+0.2*sin(2*PI*(440+110*floor(mod(t*2,4)))*t)*gt(mod(t,0.25),0.05)"
    "+0.04*(random(0)-0.5)*exp(-40*mod(t,0.25))':s=44100:d={seconds}:c=stereo"
)


def make_demo_song(path: Path, seconds: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            _SONG.format(seconds=seconds),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "192k",
            str(path),
        ],
        check=True,
    )
    return path


async def demo_split(redis: ArqRedis, storage: Storage, settings: Settings) -> None:
    """Split the demo song through the queue; print where the stems and links are."""
    folder = settings.storage.storage_dir.parent / "demo"
    song = await asyncio.to_thread(make_demo_song, folder / "demo song.mp3")
    print(
        f"No bot token is set: splitting a demo song ({song}) through the queue.", file=sys.stderr
    )
    result, written = await split_file(
        redis=redis,
        storage=storage,
        settings=settings,
        source=str(song),
        options=build_options(settings),
        out_dir=folder / "stems",
        progress=sys.stderr,
    )
    valid_h, note = settings.storage.link_ttl_h, ", served while this runs"
    print("\n".join(result_lines(result, written, valid_h=valid_h, note=note)))
