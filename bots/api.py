"""The HTTP API: ``POST /api/stemify``, ``GET``/``DELETE /api/jobs/{id}``, ``/api/openapi.json``.

Keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, each mapped to an owner name;
the limits apply per owner through the same gate as the bots (shared.gate; user
``api:<owner>``, no scope).

State of a request (kept in Redis, so any web process can answer): the core's records (the
run's hash, its waiting set, the result) plus ``stembot:api:job:<request_id>``, a hash with the
owner, the run key and arq id, the limits ticket and, once known, the final state. Requests
publish their events to ``stembot:events:api``; a consumer started with the app records the
final states there. The owner's active slot is given back by the core as the final event is
published (shared.usage), whether or not a web process is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from shared import jobs, keys, limits
from shared.backoff import Backoff
from shared.config import Settings
from shared.core import Core, Link, Requester, Song, Upload
from shared.errors import Cancelled, InternalError, MalformedRequest, StembotError, TooLarge
from shared.events import EventConsumer
from shared.gate import LimitReached, defaults
from shared.intake import build_options
from shared.models import MODELS
from shared.schemas import (
    FINAL_STATES,
    ApiReply,
    AudioFormat,
    JobOptions,
    JobResult,
    ProgressEvent,
    StemFile,
    StemMode,
)
from shared.storage import Storage

log = logging.getLogger(__name__)

EVENTS_STREAM = keys.events("api")
RECORD_PREFIX = keys.api_job("")
OPENAPI: dict[str, Any] = json.loads(Path(__file__).with_name("openapi.json").read_text())
STEMS: tuple[str, ...] = get_args(StemMode)
FORMATS = tuple(f.value for f in AudioFormat)
OPTION_FIELDS = ("model", "stems", "format")
FIELD_MAX = 2048
SLACK_BYTES = 1 << 20
CHUNK = 1 << 16
FINAL = {state.value for state in FINAL_STATES} | {"expired"}
ID_RE = re.compile(r"[0-9a-f]{32}")
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
#: Status of a core rejection by code; any other code is a 400.
STATUS = {"too_large": 413, "internal": 500, "unavailable": 503}
STATUS |= dict.fromkeys(
    ("invalid_option", "not_a_url", "unsupported_site", "unsafe_url", "not_a_video"), 422
)
STATUS["playlist_link"] = 422
FAILED_TEXT = "This job failed. Please try again later."
EXPIRED_TEXT = "This job has ended and its files are no longer kept. Please submit it again."
#: What aiohttp's multipart reader raises on a body it cannot parse: no starting boundary, a
#: part header without a colon or too long (HttpProcessingError), a body cut short ("Reading
#: after EOF"), a nested part without a boundary (ValueError, AssertionError).
MALFORMED = (ValueError, AssertionError, HttpProcessingError)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return web.json_response(body, status=status, headers={**HEADERS, **(headers or {})})


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return _json({"error": {"code": code, "message": message}}, status, headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard(handler: Handler) -> Handler:
    """Every outcome is JSON: ApiError, core rejections, aiohttp's own errors, crashes."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message, exc.headers)
        except StembotError as exc:
            return _error(STATUS.get(exc.code, 400), exc.code, exc.user_message)
        except web.HTTPException as exc:
            code = re.sub(r"\W+", "_", exc.reason.lower()).strip("_")
            return _error(exc.status, code, exc.text or exc.reason)
        except Exception:
            error = InternalError()
            log.exception(
                "API %s %s failed (reference %s)", request.method, request.path, error.reference
            )
            return _error(500, error.code, error.user_message)

    return wrapped


@web.middleware
async def _json_routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No route under /api/ (an unknown path, a method it does not take): an Error body too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        code = re.sub(r"\W+", "_", exc.reason.lower()).strip("_")
        return _error(exc.status, code, f"{exc.reason}: see /api/openapi.json.", allow)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_option", message)


def _links(result: JobResult) -> dict[str, Any]:
    def link(f: StemFile) -> dict[str, Any]:
        return {"name": f.name, "filename": f.filename, "size_bytes": f.size_bytes, "url": f.url}

    return {
        "page_url": result.page_url,
        "title": result.title,
        "model": result.model,
        "stems_mode": result.stems_mode,
        "format": result.format.value,
        "duration_s": result.duration_s,
        "expires_at": datetime.fromtimestamp(result.expires_at, UTC).isoformat(),
        "expires_in_s": max(0, int(result.expires_at - time.time())),
        "stems": [link(s) for s in result.stems],
        "zip": link(result.zip),
    }


def _shown(name: str | None) -> str:
    """A part name as quoted back to the client: short, printable."""
    if name is None:
        return "(no name)"
    return repr("".join(c if c.isprintable() else "?" for c in name)[:40])


async def _read_chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(CHUNK)
    except MALFORMED as exc:
        raise MalformedRequest(detail=f"multipart part {part.name!r}: {exc}") from None


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await _read_chunk(part):
        yield chunk
    if not part.at_eof():  # the body ended before the part's closing boundary
        raise MalformedRequest(detail=f"multipart part {part.name!r} cut short")


async def _read_field(part: BodyPartReader) -> str:
    data = b""
    async for chunk in _part_chunks(part):
        data += chunk
        if len(data) > FIELD_MAX:
            raise _invalid(f"The field {_shown(part.name)} is too long.")
    return data.decode("utf-8", "replace").strip()


async def _next_part(reader: MultipartReader) -> MultipartReader | BodyPartReader | None:
    try:
        return await reader.next()
    except MALFORMED as exc:
        raise MalformedRequest(detail=f"multipart body: {exc}") from None


class Api:
    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        redis: ArqRedis,
        api_keys: dict[str, str],
        defaults: limits.Limits,
    ) -> None:
        self.settings, self.storage, self.redis, self.defaults = settings, storage, redis, defaults
        self.core = Core(redis, storage, settings, limits_base=defaults)
        self.keys = [(key.encode(), owner) for key, owner in api_keys.items() if key]

    # --- auth and records ---------------------------------------------------------------

    def owner(self, request: web.Request) -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        given = value.strip() if scheme.lower() == "bearer" else ""
        given = given or request.headers.get("X-API-Key", "").strip()
        if not given:
            raise ApiError(
                401,
                "unauthorized",
                "Send your API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                {"WWW-Authenticate": 'Bearer realm="stembot"'},
            )
        found = None
        for key, owner in self.keys:  # compare with every key: no early exit
            if hmac.compare_digest(given.encode(), key) and found is None:
                found = owner
        if found is None:
            raise ApiError(403, "forbidden", "This API key is not valid.")
        return found

    async def record(self, request_id: str, owner: str) -> dict[str, str]:
        raw = (
            {}
            if not ID_RE.fullmatch(request_id)
            else await self.redis.hgetall(keys.api_job(request_id))  # type: ignore[misc]
        )
        rec = {k.decode(): v.decode() for k, v in raw.items()}
        if rec.get("owner") != owner:  # unknown, or another owner's: the same answer
            raise ApiError(404, "not_found", "No such job.")
        return rec

    async def set_final(self, request_id: str, state: str, code: str, message: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.api_job(request_id),
                mapping={"final_state": state, "error_code": code, "error_message": message},
            )
            pipe.expire(keys.api_job(request_id), jobs.REQUEST_TTL_S)
            await pipe.execute()

    # --- state -------------------------------------------------------------------------

    async def view(self, request_id: str, rec: dict[str, str]) -> dict[str, Any]:
        """The Job object: final state recorded, else worked out from the core's records."""
        view: dict[str, Any] = {"job_id": request_id, "state": "queued", "percent": None}
        view |= {"position": None, "eta_s": None, "error": None, "result": None}
        view["status_url"] = f"/api/jobs/{request_id}"
        key, final = rec["key"], rec.get("final_state")
        if final in ("failed", "cancelled"):
            message = rec.get("error_message") or FAILED_TEXT
            error = {"code": rec.get("error_code") or final, "message": message}
            return view | {"state": final, "error": error}
        if final == "done" or rec.get("cached"):
            return await self._done(view, key)
        raw = await self.redis.hgetall(jobs.job_key(key))  # type: ignore[misc]
        run = {k.decode(): v.decode() for k, v in raw.items()}
        if run.get("arq_id") != rec.get("arq_id"):  # our run is gone, or a new one started
            return await self._done(view, key)
        state = run.get("state", "queued")
        if state == "done":
            return await self._done(view, key)
        member = await self.redis.sismember(jobs.subscribers_key(key), request_id)  # type: ignore[misc]
        if state in ("failed", "cancelled") or not member:
            state = "cancelled" if state != "failed" else state
            text = Cancelled().user_message if state == "cancelled" else FAILED_TEXT
            error = {"code": run.get("error_code") or state, "message": text}
            return view | {"state": state, "error": error}
        view |= {"state": state, "percent": float(run["percent"]) if run.get("percent") else None}
        if state == "queued":
            arq_id, names = rec["arq_id"], self.settings.redis
            pos, eta = await jobs.queue_position(self.redis, arq_id, queue_name=names.queue_name)
            if pos is None:
                pos, eta = await jobs.queue_position(
                    self.redis, arq_id + jobs.DOWNLOAD_SUFFIX, queue_name=names.download_queue_name
                )
            view |= {"position": pos, "eta_s": eta}
        return view

    async def _done(self, view: dict[str, Any], key: str) -> dict[str, Any]:
        raw = await self.redis.get(jobs.result_key(key))
        result = JobResult.model_validate_json(raw) if raw else None
        if result is None or result.expires_at <= time.time():
            return view | {
                "state": "expired",
                "error": {"code": "expired", "message": EXPIRED_TEXT},
            }
        return view | {"state": "done", "result": _links(result)}

    # --- handlers ----------------------------------------------------------------------

    async def stemify(self, request: web.Request) -> web.StreamResponse:
        owner = self.owner(request)
        if request.content_type == "multipart/form-data":
            limit = self.settings.limits.max_upload_bytes
            size = request.content_length
            if size is not None and size > limit + SLACK_BYTES:
                raise ApiError(413, TooLarge.code, TooLarge(limit, size).user_message)
            try:
                reader = await request.multipart()
            except MALFORMED as exc:
                raise MalformedRequest(detail=f"multipart body: {exc}") from None
            fields: dict[str, str] = {}
            while (part := await _next_part(reader)) is not None:
                if not isinstance(part, BodyPartReader):
                    raise _invalid("Nested multipart bodies are not supported.")
                if part.name == "file":
                    if "url" in fields:
                        raise _invalid("Send either a file or a url, not both.")
                    options = self.options(fields)
                    return await self.submit(owner, options, part=part)
                if part.name not in (*OPTION_FIELDS, "url"):
                    raise _invalid(
                        f"Unknown field {_shown(part.name)}: use file, url, model, stems, format."
                    )
                if part.name in fields:
                    raise _invalid(f"The field {_shown(part.name)} was sent twice.")
                fields[part.name] = await _read_field(part)
            if not fields.get("url"):
                raise _invalid("Send an audio file in a part named 'file' (or a YouTube 'url').")
            return await self.submit(owner, self.options(fields), url=fields["url"])
        if request.content_type != "application/json":
            raise ApiError(
                415,
                "unsupported_media_type",
                "Send multipart/form-data (with a file) or application/json (with a url).",
            )
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(400, "bad_request", "The body is not valid JSON.") from exc
        except LookupError as exc:  # an unknown charset in the Content-Type
            raise MalformedRequest(detail=str(exc)) from None
        if not isinstance(body, dict):
            raise _invalid("The body must be a JSON object.")
        if "file" in body:
            raise _invalid("Upload files as multipart/form-data; JSON takes only a url.")
        unknown = sorted(set(body) - {*OPTION_FIELDS, "url"})
        if unknown:
            raise _invalid(f"Unknown field {unknown[0]!r}: use url, model, stems, format.")
        for name, value in body.items():
            if value is not None and not isinstance(value, str):
                raise _invalid(f"The field {name!r} must be a string.")
        if not body.get("url"):
            raise _invalid(
                "Send a YouTube link in 'url' (or upload a file as multipart/form-data)."
            )
        fields = {k: v for k, v in body.items() if v is not None}
        return await self.submit(owner, self.options(fields), url=body["url"])

    def options(self, fields: dict[str, str]) -> JobOptions:
        model, stems = fields.get("model") or None, fields.get("stems") or "all"
        fmt = (fields.get("format") or "mp3").lower()
        if model is not None and model not in MODELS:
            raise _invalid(f"Unknown model {model!r}. Choose one of: {', '.join(MODELS)}.")
        if stems not in STEMS:
            raise _invalid(f"Unknown stems {stems!r}. Choose one of: {', '.join(STEMS)}.")
        if fmt not in FORMATS:
            raise _invalid(f"Unknown format {fmt!r}. Choose one of: {', '.join(FORMATS)}.")
        return build_options(self.settings, model=model, stems=stems, fmt=fmt)  # type: ignore[arg-type]

    async def submit(
        self, owner: str, options: JobOptions, *, part: BodyPartReader | None = None, url: str = ""
    ) -> web.StreamResponse:
        song: Song = Link(url)
        if part is not None:
            song = Upload(_part_chunks(part), part.filename or "track")
        try:
            accepted = await self.core.request(
                Requester("api", f"api:{owner}"), song, options, ApiReply(owner=owner)
            )
        except LimitReached as exc:
            if exc.decision.reason == "banned":
                raise ApiError(403, "banned", exc.user_message) from None
            retry = exc.retry_after_s
            headers = {"Retry-After": str(max(1, math.ceil(retry)))} if retry else {}
            raise ApiError(429, exc.code, exc.user_message, headers) from None
        rid, key = accepted.request_id, accepted.first.job_id
        cached = accepted.outcome == "cached"
        arq_id = b"" if cached else await self.redis.hget(jobs.job_key(key), "arq_id")  # type: ignore[misc]
        rec = {"owner": owner, "key": key, "arq_id": (arq_id or b"").decode()}
        rec["cached"] = "1" if cached else ""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.api_job(rid), mapping=rec)
            pipe.expire(keys.api_job(rid), jobs.REQUEST_TTL_S)
            await pipe.execute()
        log.info("API request %s (job %s, %s) by %s", rid, key, accepted.outcome, owner)
        view = await self.view(rid, await self.record(rid, owner))
        return _json(view, 200 if view["state"] == "done" else 202)

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        owner, rid = self.owner(request), request.match_info["job_id"]
        rec = await self.record(rid, owner)
        return _json(await self.view(rid, rec))

    async def delete_job(self, request: web.Request) -> web.StreamResponse:
        owner, rid = self.owner(request), request.match_info["job_id"]
        rec = await self.record(rid, owner)
        cancelled = {"job_id": rid, "state": "cancelled"}
        state = (await self.view(rid, rec))["state"]
        if state not in FINAL:
            stored = await jobs.load_requests(self.redis, [rid])
            if stored and await jobs.cancel_request(self.redis, stored[0], storage=self.storage):
                error = Cancelled()
                await self.set_final(rid, "cancelled", error.code, error.user_message)
                state = "cancelled"
            else:
                state = (await self.view(rid, await self.record(rid, owner)))["state"]
        if state == "cancelled":
            return _json(cancelled)
        raise ApiError(409, "already_finished", f"This job has already finished ({state}).")

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        servers = [{"url": self.settings.storage.public_url}]
        return web.json_response({**OPENAPI, "servers": servers})

    # --- the event stream --------------------------------------------------------------

    async def consume(self) -> None:
        """Record final states and free active slots as the worker's events arrive."""
        consumer = EventConsumer(self.redis, EVENTS_STREAM, "api", "api")
        backoff = Backoff(first_s=0.5, max_s=30.0)  # jittered: web servers do not come back at once
        while True:
            try:
                await consumer.ensure_group()
                for entry_id, event in await consumer.read(block_ms=1000):
                    if event.state.final:
                        await self.on_final(event)
                    await consumer.ack(entry_id)
                if backoff.succeeded():
                    log.info("API events: Redis reachable again")
            except RedisError as exc:
                wait = backoff.failed()
                log.warning("API events: Redis error (%s), retrying in %.1f s", exc, wait)
                await asyncio.sleep(wait)
            except Exception:
                wait = backoff.failed()
                log.exception("API events: reading the stream failed, retrying in %.1f s", wait)
                await asyncio.sleep(wait)

    async def on_final(self, event: ProgressEvent) -> None:
        """Record a request's final state (its active slot went back as the event was
        published: shared.usage)."""
        for request in await jobs.load_requests(self.redis, event.request_ids):
            if not isinstance(request.reply, ApiReply):
                continue
            await self.set_final(
                request.request_id,
                event.state.value,
                event.error_code or "",
                event.error_message or "",
            )


def add_api_routes(
    app: web.Application,
    *,
    settings: Settings,
    storage: Storage,
    redis: ArqRedis,
    api_keys: dict[str, str],
    limits_defaults: limits.Limits | None = None,
    consume_events: bool = True,
) -> None:
    """Add the ``/api/...`` routes (see bots/openapi.json) and, unless ``consume_events`` is
    False, the reader of ``stembot:events:api`` that frees active slots as jobs end."""
    api = Api(settings, storage, redis, api_keys, limits_defaults or defaults(settings))
    app.middlewares.append(_json_routing_errors)
    app.router.add_post("/api/stemify", _guard(api.stemify))
    app.router.add_get("/api/jobs/{job_id}", _guard(api.get_job), allow_head=False)
    app.router.add_delete("/api/jobs/{job_id}", _guard(api.delete_job))
    app.router.add_get("/api/openapi.json", _guard(api.openapi))
    if consume_events:

        async def events(_app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(api.consume(), name="api-events")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(events)
