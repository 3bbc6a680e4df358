"""The results page's "Download this mix": the mixer's state made into one file.

page.js posts what the mixer plays, ``{"volumes": {track: percent}, "format": "flac"}``
(``format`` optional: the song's), to ``/r/<job key>/mix`` under the page's own signed query
(bots.page.handlers checks it as the page does). The page's tracks are the song's stems
(``drums``...), or a two-stem song's ``vocals`` and ``instrumental`` / ``no_<stem>``, which
stand for the stems they hold (:func:`expand`). The song is the run of the page's key
(shared.mixes.find_song); the mix is asked for through the core (shared.mixes: rendered
from the kept master in seconds, never by Demucs) in the name of the song's owner, whose
mixes per hour it counts, and followed on a stream of its own up to :data:`WAIT_S`.

The answer is JSON: ``{"url", "name", "size", "size_label"}`` (a download link on this server,
so that ``<a download>`` works), or ``{"error": text}`` in the page's language with the
status of the refusal (:func:`refusal`).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from arq.connections import ArqRedis

from bots.page.load import relative_url
from shared import events, keys, mixes
from shared.core import Core, Requester
from shared.errors import (
    InvalidOption,
    MixExpired,
    MixNotReady,
    NoStemsToMix,
    ServiceUnavailable,
    StembotError,
)
from shared.errors import render as render_error
from shared.gate import LimitReached
from shared.i18n import N_, Texts
from shared.models import MODEL_SOURCES
from shared.schemas import JobResult, JobState, LocalReply, ProgressEvent

#: How long the page waits for its mix (a render takes seconds; a busy queue may take more).
WAIT_S = 60.0
FRONTEND = "page"
EXAMPLE = '{"volumes": {"drums": 50, "bass": 100}}'
TOO_SLOW = N_("The mix is taking longer than usual. Please try again in a minute.")
#: The status of a failure known by its code (a refusal, or a mix that failed in the worker).
STATUS = {
    InvalidOption.code: 400,
    MixNotReady.code: 409,
    NoStemsToMix.code: 409,
    MixExpired.code: 410,
    ServiceUnavailable.code: 503,
}


class MixRefused(Exception):
    """What the page is told instead of a mix: a status and a text in its language."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, dict(headers or {})


@dataclass(frozen=True)
class MixBody:
    volumes: dict[str, float]
    #: None: the song's format
    format: str | None


async def read_body(request: web.Request, t: Texts) -> MixBody:
    """The mixer's state as page.js sent it, or MixRefused (in ``t``'s language) when the
    body is not one."""
    if request.content_type != "application/json":
        text = t._(N_("Send application/json: an object such as {example}."), example=EXAMPLE)
        raise MixRefused(415, text)
    try:
        try:
            body = await request.json()
        except (ValueError, LookupError):  # not JSON, or an unknown charset
            raise InvalidOption(N_("The body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise InvalidOption(N_("The body must be a JSON object."))
        fmt = body.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise InvalidOption(N_("The field {field} must be a string."), field="'format'")
        volumes = mixes.parse_volumes(body.get("volumes"))
    except StembotError as exc:
        raise refusal(exc, t) from None
    return MixBody(volumes, fmt.strip().lower() if fmt else None)


def expand(model: str, volumes: Mapping[str, float]) -> dict[str, float]:
    """The page's tracks as the model's stems: ``instrumental`` is every stem but the vocals,
    ``no_<stem>`` every stem but that one, at the track's volume; other names stay as they
    are (the core refuses those the model does not have)."""
    sources = MODEL_SOURCES[model]
    stems: dict[str, float] = {}
    for name, level in volumes.items():
        track = name.strip().lower()
        left_out = "vocals" if track == "instrumental" else track.removeprefix(mixes.WITHOUT)
        if track != left_out and left_out in sources:
            stems.update(dict.fromkeys((s for s in sources if s != left_out), level))
        else:
            stems[track] = level
    return stems


def refusal(exc: StembotError, t: Texts) -> MixRefused:
    """The page's answer to a refused mix: its text in the page's language, and a status
    (429 for a limit, with Retry-After; 403 for a ban)."""
    if isinstance(exc, LimitReached):
        if exc.decision.reason == "banned":
            return MixRefused(403, exc.message(t))
        retry = exc.retry_after_s
        headers = {"Retry-After": str(max(1, math.ceil(retry)))} if retry else {}
        return MixRefused(429, exc.message(t), headers)
    return MixRefused(STATUS.get(exc.code, 500), exc.message(t))


async def wait_for(redis: ArqRedis, stream: str, timeout_s: float) -> ProgressEvent | None:
    """The final event on ``stream``; None when it does not come within ``timeout_s``."""
    last = "0"
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        block = max(1, int(min(left, 1.0) * 1000))
        for _, entries in await redis.xread({stream: last}, block=block, count=100):
            for entry_id, fields in entries:
                last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                event = events.decode_entry(fields)
                if event.state.final:
                    return event
    return None


async def make_mix(
    core: Core, job_key: str, body: MixBody, t: Texts, *, timeout_s: float = WAIT_S
) -> JobResult:
    """The mix of the page of ``job_key`` (its file published), or MixRefused."""
    try:
        song = await mixes.find_song(core.redis, None, job_key)
        if song is None:
            raise MixExpired()
        stems = expand(song.options.model, body.volumes)
        stream = keys.events(f"{FRONTEND}:{uuid.uuid4().hex}")
        try:
            accepted = await core.mix(
                Requester(FRONTEND, song.user_id),
                song,
                list(stems),
                body.format,
                LocalReply(frontend=FRONTEND),
                volumes=stems,
                reply_to=stream,
            )
            if accepted.result is not None:
                return accepted.result
            final = await wait_for(core.redis, stream, timeout_s)
        finally:
            await core.redis.delete(stream)
    except StembotError as exc:
        raise refusal(exc, t) from None
    if final is None:
        raise MixRefused(504, t._(TOO_SLOW))
    if final.state == JobState.DONE and final.result is not None:
        return final.result
    text = render_error(t, final.error_code, final.error_params, final.error_message)
    raise MixRefused(STATUS.get(final.error_code or "", 500), text)


def answer(result: JobResult, signing_key: bytes, t: Texts) -> dict[str, Any]:
    """What page.js gets for a made mix: its download link on this server, its file name
    and size."""
    [mix] = result.stems
    return {
        "url": relative_url(signing_key, result.key, mix.filename, result.expires_at),
        "name": mix.filename,
        "size": mix.size_bytes,
        "size_label": t.size(mix.size_bytes),
    }
