"""`stembot split --mix`: custom mixes of the song just split, through the same core.

Each ``--mix`` names the stems of one file: stems separated by commas (``bass,drums``) or
every stem but one (``no_drums``; ``no_vocals`` is the karaoke track). They are checked
against the model before anything runs (:func:`parse_all`), then asked for once the split is
done (shared.mixes: rendered from the song's kept stems, without separating again), and each
mix file is written next to the stems as ``OUT/<mix name>.<ext>``.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from arq.connections import ArqRedis

from bots.split import ProgressLine, SplitFailed, follow
from shared import keys, mixes
from shared.config import Settings
from shared.core import Core
from shared.errors import MixExpired, StembotError
from shared.schemas import JobResult, LocalReply
from shared.storage import Storage


@dataclass(frozen=True)
class MadeMix:
    name: str
    path: Path
    result: JobResult


def parse_all(model: str, specs: list[str]) -> list[tuple[str, ...]]:
    """Every ``--mix`` as the stems it keeps; InvalidOption for the first that does not fit."""
    return [mixes.parse(model, spec) for spec in specs]


async def mix_files(
    *,
    redis: ArqRedis,
    storage: Storage,
    settings: Settings,
    song: JobResult,
    wanted: list[tuple[str, ...]],
    out_dir: Path,
    progress: TextIO,
    timeout_s: float | None = None,
) -> list[MadeMix]:
    """Ask for each mix of the song whose result is ``song``, follow it, copy its file out."""
    if not wanted:
        return []
    request = await mixes.find_song(redis, None, song.key)
    if request is None:
        raise SplitFailed(MixExpired().user_message)
    core = Core(redis, storage, settings)
    user_id = f"cli:{getpass.getuser()}"
    made: list[MadeMix] = []
    for stems in wanted:
        reply_to = keys.events(f"cli:{uuid.uuid4().hex}")
        line = ProgressLine(progress)
        try:
            accepted = await core.mix(
                None,
                request,
                stems,
                None,
                LocalReply(frontend="cli"),
                user_id=user_id,
                reply_to=reply_to,
            )
            result = accepted.result
            if result is None:
                line.show(accepted.first)
                result = await follow(redis, reply_to, line, timeout_s=timeout_s)
        except StembotError as exc:
            raise SplitFailed(exc.user_message) from exc
        finally:
            await redis.delete(reply_to)
        [mix] = result.stems
        dest = out_dir / mix.filename
        await storage.fetch_job_file(result.key, mix.filename, dest)
        made.append(MadeMix(mix.name, dest, result))
    return made


def mix_lines(made: list[MadeMix], *, valid_h: float) -> list[str]:
    """What a split prints of its mixes: each file written, and its download link."""
    if not made:
        return []
    lines = [f"Mixes (download links valid {valid_h:g} h):"]
    for mix in made:
        lines += [f"  {mix.name}: {mix.path}", f"    {mix.result.stems[0].url}"]
    return lines
