"""What a client sent to ``POST /api/jobs/{job_id}/mixes``, read and checked.

A JSON object: ``stems``, the list of stem names to keep (``["bass", "drums"]``), an
optional ``format`` (default: the song's) and optional ``volumes``, an object of stem names
and their volumes in percent (``{"drums": 50}``: 0 leaves a stem out, default 100). Whether
the stems and volumes fit the song's model is the core's to say (shared.mixes); here only
the body's shape. Every refusal is an error with a
code and a catalogue text (bots.api_errors renders it in the client's language).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bots.api_body import read_json_object
from bots.api_errors import ApiError
from shared import mixes
from shared.errors import InvalidOption
from shared.i18n import N_

FIELDS = ("stems", "format", "volumes")
#: More names than any model has stems: a longer list is not a mix request.
MAX_STEMS = mixes.MAX_STEMS
EXAMPLE = '{"stems": ["bass", "drums"]}'


@dataclass(frozen=True)
class MixBody:
    stems: list[str]
    #: None: the song's own format
    format: str | None
    #: percent per stem, as sent (shared.mixes checks them); None: every stem at 100
    volumes: dict[str, float] | None = None


async def read_mix_body(request: web.Request) -> MixBody:
    """The stems and format asked for, or the refusal of a body that is not a mix request."""
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            N_("Send application/json: an object such as {example}."),
            example=EXAMPLE,
        )
    body = await read_json_object(request)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidOption(
            N_("Unknown field {field}: use stems, format, volumes."), field=repr(unknown[0])
        )
    stems = body.get("stems")
    if (
        not isinstance(stems, list)
        or len(stems) > MAX_STEMS
        or not all(isinstance(s, str) for s in stems)
    ):
        raise InvalidOption(
            N_("The field {field} must be a list of stem names, such as {example}."),
            field="'stems'",
            example='["bass", "drums"]',
        )
    fmt = body.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise InvalidOption(N_("The field {field} must be a string."), field="'format'")
    volumes = body.get("volumes")
    return MixBody(
        stems,
        fmt.strip().lower() if fmt else None,
        None if volumes is None else mixes.parse_volumes(volumes),
    )
