"""What a client sent to ``POST /api/jobs/{job_id}/mixes``, read and checked.

A JSON object: ``stems``, the list of stem names to keep (``["bass", "drums"]``), and an
optional ``format`` (default: the song's). Whether the stems fit the song's model is the
core's to say (shared.mixes); here only the body's shape. Every refusal is an error with a
code and a catalogue text (bots.api_errors renders it in the client's language).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bots.api_errors import ApiError
from shared.errors import InvalidOption, MalformedRequest
from shared.i18n import N_

FIELDS = ("stems", "format")
#: More names than any model has stems: a longer list is not a mix request.
MAX_STEMS = 16
EXAMPLE = '{"stems": ["bass", "drums"]}'


@dataclass(frozen=True)
class MixBody:
    stems: list[str]
    #: None: the song's own format
    format: str | None


async def read_mix_body(request: web.Request) -> MixBody:
    """The stems and format asked for, or the refusal of a body that is not a mix request."""
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            N_("Send application/json: an object such as {example}."),
            example=EXAMPLE,
        )
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "bad_request", N_("The body is not valid JSON.")) from exc
    except LookupError as exc:  # an unknown charset in the Content-Type
        raise MalformedRequest(detail=str(exc)) from None
    if not isinstance(body, dict):
        raise InvalidOption(N_("The body must be a JSON object."))
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidOption(N_("Unknown field {field}: use stems, format."), field=repr(unknown[0]))
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
    return MixBody(stems, fmt.strip().lower() if fmt else None)
