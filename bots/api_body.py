"""What a client sent to ``POST /api/stemify``, read and checked.

multipart/form-data: the option fields first, then the ``file`` part, handed on unread (the
core streams it to storage), or a ``url`` field instead; application/json: an object with a
``url`` and the options. Every refusal is an error with a code and a catalogue text
(bots.api_errors renders it in the client's language).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, get_args

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bots.api_errors import ApiError
from shared.config import Settings
from shared.errors import InvalidOption, MalformedRequest, TooLarge
from shared.i18n import N_
from shared.intake import build_options
from shared.models import MODELS
from shared.schemas import AudioFormat, JobOptions, StemMode

STEMS: tuple[str, ...] = get_args(StemMode)
FORMATS = tuple(f.value for f in AudioFormat)
OPTION_FIELDS = ("model", "stems", "format")
FIELD_MAX = 2048
SLACK_BYTES = 1 << 20
CHUNK = 1 << 16
#: What aiohttp's multipart reader raises on a body it cannot parse: no starting boundary, a
#: part header without a colon or too long (HttpProcessingError), a body cut short ("Reading
#: after EOF"), a nested part without a boundary (ValueError, AssertionError).
MALFORMED = (ValueError, AssertionError, HttpProcessingError)


@dataclass
class Body:
    """The option fields, and the file part to stream (None: ``fields["url"]`` is the song)."""

    fields: dict[str, str]
    part: BodyPartReader | None = None


def _shown(name: str) -> str:
    """A part name as quoted back to the client: short, printable."""
    return repr("".join(c if c.isprintable() else "?" for c in name)[:40])


async def _read_chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(CHUNK)
    except MALFORMED as exc:
        raise MalformedRequest(detail=f"multipart part {part.name!r}: {exc}") from None


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    """The bytes of ``part`` as they arrive; MalformedRequest when the body is cut short."""
    while chunk := await _read_chunk(part):
        yield chunk
    if not part.at_eof():  # the body ended before the part's closing boundary
        raise MalformedRequest(detail=f"multipart part {part.name!r} cut short")


async def _read_field(part: BodyPartReader, name: str) -> str:
    data = b""
    async for chunk in part_chunks(part):
        data += chunk
        if len(data) > FIELD_MAX:
            raise InvalidOption(N_("The field {field} is too long."), field=_shown(name))
    return data.decode("utf-8", "replace").strip()


async def _next_part(reader: MultipartReader) -> MultipartReader | BodyPartReader | None:
    try:
        return await reader.next()
    except MALFORMED as exc:
        raise MalformedRequest(detail=f"multipart body: {exc}") from None


async def read_body(request: web.Request, max_upload_bytes: int) -> Body:
    """The request's fields and file part, or the refusal of a body that is not one."""
    if request.content_type == "multipart/form-data":
        return await _read_form(request, max_upload_bytes)
    if request.content_type == "application/json":
        return await _read_json(request)
    raise ApiError(
        415,
        "unsupported_media_type",
        N_("Send multipart/form-data (with a file) or application/json (with a url)."),
    )


async def _read_form(request: web.Request, limit: int) -> Body:
    size = request.content_length
    if size is not None and size > limit + SLACK_BYTES:
        raise TooLarge(limit, size)
    try:
        reader = await request.multipart()
    except MALFORMED as exc:
        raise MalformedRequest(detail=f"multipart body: {exc}") from None
    fields: dict[str, str] = {}
    while (part := await _next_part(reader)) is not None:
        if not isinstance(part, BodyPartReader):
            raise InvalidOption(N_("Nested multipart bodies are not supported."))
        if part.name == "file":
            if "url" in fields:
                raise InvalidOption(N_("Send either a file or a url, not both."))
            return Body(fields, part)
        if part.name is None:
            raise InvalidOption(N_("A part has no name: use file, url, model, stems, format."))
        if part.name not in (*OPTION_FIELDS, "url"):
            raise InvalidOption(
                N_("Unknown field {field}: use file, url, model, stems, format."),
                field=_shown(part.name),
            )
        if part.name in fields:
            raise InvalidOption(N_("The field {field} was sent twice."), field=_shown(part.name))
        fields[part.name] = await _read_field(part, part.name)
    if not fields.get("url"):
        raise InvalidOption(N_("Send an audio file in a part named 'file' (or a YouTube 'url')."))
    return Body(fields)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """A JSON body that must be an object (the API's JSON requests), or its refusal."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "bad_request", N_("The body is not valid JSON.")) from exc
    except LookupError as exc:  # an unknown charset in the Content-Type
        raise MalformedRequest(detail=str(exc)) from None
    if not isinstance(body, dict):
        raise InvalidOption(N_("The body must be a JSON object."))
    return body


async def _read_json(request: web.Request) -> Body:
    body = await read_json_object(request)
    if "file" in body:
        raise InvalidOption(N_("Upload files as multipart/form-data; JSON takes only a url."))
    unknown = sorted(set(body) - {*OPTION_FIELDS, "url"})
    if unknown:
        raise InvalidOption(
            N_("Unknown field {field}: use url, model, stems, format."), field=repr(unknown[0])
        )
    for name, value in body.items():
        if value is not None and not isinstance(value, str):
            raise InvalidOption(N_("The field {field} must be a string."), field=repr(name))
    if not body.get("url"):
        raise InvalidOption(
            N_("Send a YouTube link in 'url' (or upload a file as multipart/form-data).")
        )
    return Body({k: v for k, v in body.items() if v is not None})


def job_options(settings: Settings, fields: dict[str, str]) -> JobOptions:
    """The options the fields ask for (the server's defaults for those left out)."""
    model, stems = fields.get("model") or None, fields.get("stems") or "all"
    fmt = (fields.get("format") or "mp3").lower()
    if model is not None and model not in MODELS:
        raise InvalidOption(
            N_("Unknown model {model}. Choose one of: {models}."),
            model=repr(model),
            models=", ".join(MODELS),
        )
    if stems not in STEMS:
        raise InvalidOption(
            N_("Unknown stems {stems}. Choose one of: {choices}."),
            stems=repr(stems),
            choices=", ".join(STEMS),
        )
    if fmt not in FORMATS:
        raise InvalidOption(
            N_("Unknown format {format}. Choose one of: {choices}."),
            format=repr(fmt),
            choices=", ".join(FORMATS),
        )
    return build_options(settings, model=model, stems=stems, fmt=fmt)  # type: ignore[arg-type]
