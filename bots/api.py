"""The HTTP API: ``POST /api/stemify``, ``GET``/``DELETE /api/jobs/{id}``,
``POST /api/jobs/{id}/mixes`` (a custom mix of a finished job: a job of its own, with the
``song`` it mixes in its record), ``/api/openapi.json``.

Keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, each mapped to an owner name;
the limits apply per owner through the same gate as the bots (shared.gate; user
``api:<owner>``, no scope).

State of a request (kept in Redis, so any web process can answer): the core's records (the
run's hash, its waiting set, the result) plus ``stembot:api:job:<request_id>``, a hash with the
owner, the run key and arq id, the limits ticket and, once known, the final state (with its
error's code and params: bots.api_errors.final_record). Requests publish their events to
``stembot:events:api``; a consumer started with the app records the final states there. The
owner's active slot is given back by the core as the final event is published
(shared.usage), whether or not a web process is running.

Texts for people (error messages) are in the language of the client's ``Accept-Language``
(bots.api_errors); codes never change with it. The request body is read and checked in
bots.api_body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from math import ceil
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from bots.api_body import job_options, part_chunks, read_body
from bots.api_errors import (
    ApiError,
    expired_error,
    final_record,
    guard,
    json_response,
    json_routing_errors,
    recorded_error,
    request_texts,
    run_error,
)
from bots.api_mixes import read_mix_body
from shared import jobs, keys, limits, mixes
from shared.backoff import Backoff
from shared.config import Settings
from shared.core import Accepted, Core, Link, Requester, Song, Upload
from shared.errors import Cancelled, MixExpired, MixNotReady, NoStemsToMix, Params
from shared.events import EventConsumer
from shared.gate import LimitReached, defaults
from shared.i18n import N_, Texts
from shared.links import with_lang
from shared.music import key_label, tempo_label
from shared.schemas import FINAL_STATES, ApiReply, JobOptions, JobResult, ProgressEvent, StemFile
from shared.storage import Storage

log = logging.getLogger(__name__)

EVENTS_STREAM = keys.events("api")
RECORD_PREFIX = keys.api_job("")
OPENAPI: dict[str, Any] = json.loads(Path(__file__).with_name("openapi.json").read_text())
FINAL = {state.value for state in FINAL_STATES} | {"expired"}
ID_RE = re.compile(r"[0-9a-f]{32}")


def _links(result: JobResult, reader: Reader) -> dict[str, Any]:
    def link(f: StemFile) -> dict[str, Any]:
        return {"name": f.name, "filename": f.filename, "size_bytes": f.size_bytes, "url": f.url}

    page, page_lang, t = result.page_url, reader.page_lang, reader.t
    key = result.analysis.key if result.analysis else None
    tempo = result.analysis.tempo if result.analysis else None
    return {
        # in the client's language when it asked for one (``lang`` is not signed: shared.links)
        "page_url": with_lang(page, page_lang) if page and page_lang else page,
        "title": result.title,
        "model": result.model,
        "stems_mode": result.stems_mode,
        "format": result.format.value,
        "duration_s": result.duration_s,
        "key": None
        if key is None
        else key.model_dump(mode="json") | {"name": key.name, "label": key_label(t, key)},
        "tempo": None
        if tempo is None
        else tempo.model_dump(mode="json") | {"label": tempo_label(t, tempo)},
        "expires_at": datetime.fromtimestamp(result.expires_at, UTC).isoformat(),
        "expires_in_s": max(0, int(result.expires_at - time.time())),
        "stems": [link(s) for s in result.stems],
        "zip": None if result.zip is None else link(result.zip),
    }


def limit_error(exc: LimitReached) -> ApiError:
    """A limit's refusal: 403 for a ban, else 429 (with Retry-After when waiting helps)."""
    if exc.decision.reason == "banned":
        return ApiError(403, "banned", cause=exc)
    retry = exc.retry_after_s
    headers = {"Retry-After": str(max(1, ceil(retry)))} if retry else {}
    return ApiError(429, exc.code, headers=headers, cause=exc)


@dataclass(frozen=True)
class Reader:
    """Who reads a Job object: the texts of their language, and the language of the results
    page link (None: the client named none, the page follows the browser)."""

    t: Texts
    page_lang: str | None

    @classmethod
    def of(cls, request: web.Request) -> Reader:
        t = request_texts(request)
        return cls(t, t.lang if request.headers.get(hdrs.ACCEPT_LANGUAGE) else None)


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
                N_("Send your API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."),
                {"WWW-Authenticate": 'Bearer realm="stembot"'},
            )
        found = None
        for key, owner in self.keys:  # compare with every key: no early exit
            if hmac.compare_digest(given.encode(), key) and found is None:
                found = owner
        if found is None:
            raise ApiError(403, "forbidden", N_("This API key is not valid."))
        return found

    async def record(self, request_id: str, owner: str) -> dict[str, str]:
        raw = (
            {}
            if not ID_RE.fullmatch(request_id)
            else await self.redis.hgetall(keys.api_job(request_id))  # type: ignore[misc]
        )
        rec = {k.decode(): v.decode() for k, v in raw.items()}
        if rec.get("owner") != owner:  # unknown, or another owner's: the same answer
            raise ApiError(404, "not_found", N_("No such job."))
        return rec

    async def set_final(
        self, request_id: str, state: str, code: str, params: Params, message: str
    ) -> None:
        """Record a request's end: its error's code and params (each reader's language renders
        them), and the English text."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.api_job(request_id), mapping=final_record(state, code, params, message))
            pipe.expire(keys.api_job(request_id), jobs.REQUEST_TTL_S)
            await pipe.execute()

    # --- state -------------------------------------------------------------------------

    async def view(self, request_id: str, rec: dict[str, str], reader: Reader) -> dict[str, Any]:
        """The Job object: final state recorded, else worked out from the core's records."""
        view: dict[str, Any] = {"job_id": request_id, "state": "queued", "percent": None}
        view |= {"position": None, "eta_s": None, "error": None, "result": None}
        view["status_url"] = f"/api/jobs/{request_id}"
        key, final = rec["key"], rec.get("final_state")
        if final in ("failed", "cancelled"):
            return view | {"state": final, "error": recorded_error(reader.t, rec)}
        if final == "done" or rec.get("cached"):
            return await self._done(view, key, reader)
        raw = await self.redis.hgetall(jobs.job_key(key))  # type: ignore[misc]
        run = {k.decode(): v.decode() for k, v in raw.items()}
        if run.get("arq_id") != rec.get("arq_id"):  # our run is gone, or a new one started
            return await self._done(view, key, reader)
        state = run.get("state", "queued")
        if state == "done":
            return await self._done(view, key, reader)
        member = await self.redis.sismember(jobs.subscribers_key(key), request_id)  # type: ignore[misc]
        if state in ("failed", "cancelled") or not member:
            state = "cancelled" if state != "failed" else state
            return view | {
                "state": state,
                "error": run_error(reader.t, state, run.get("error_code")),
            }
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

    async def _done(self, view: dict[str, Any], key: str, reader: Reader) -> dict[str, Any]:
        raw = await self.redis.get(jobs.result_key(key))
        result = JobResult.model_validate_json(raw) if raw else None
        if result is None or result.expires_at <= time.time():
            return view | {"state": "expired", "error": expired_error(reader.t)}
        return view | {"state": "done", "result": _links(result, reader)}

    # --- handlers ----------------------------------------------------------------------

    async def stemify(self, request: web.Request) -> web.StreamResponse:
        owner = self.owner(request)
        body = await read_body(request, self.settings.limits.max_upload_bytes)
        options = job_options(self.settings, body.fields)
        reader = Reader.of(request)
        if body.part is not None:
            return await self.submit(owner, options, reader, part=body.part)
        return await self.submit(owner, options, reader, url=body.fields["url"])

    async def submit(
        self,
        owner: str,
        options: JobOptions,
        reader: Reader,
        *,
        part: BodyPartReader | None = None,
        url: str = "",
    ) -> web.StreamResponse:
        song: Song = Link(url)
        if part is not None:
            song = Upload(part_chunks(part), part.filename or "track")
        try:
            accepted = await self.core.request(
                Requester("api", f"api:{owner}"), song, options, ApiReply(owner=owner)
            )
        except LimitReached as exc:
            raise limit_error(exc) from None
        return await self.answer(owner, accepted, reader)

    async def answer(
        self, owner: str, accepted: Accepted, reader: Reader, **extra: str
    ) -> web.StreamResponse:
        """Record an accepted request (``extra``: more fields of its record) and answer with
        its Job object: 200 when done at once, 202 to poll."""
        rid, key = accepted.request_id, accepted.first.job_id
        cached = accepted.outcome == "cached"
        arq_id = b"" if cached else await self.redis.hget(jobs.job_key(key), "arq_id")  # type: ignore[misc]
        rec = {"owner": owner, "key": key, "arq_id": (arq_id or b"").decode()}
        rec["cached"] = "1" if cached else ""
        rec |= extra
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.api_job(rid), mapping=rec)
            pipe.expire(keys.api_job(rid), jobs.REQUEST_TTL_S)
            await pipe.execute()
        log.info("API request %s (job %s, %s) by %s", rid, key, accepted.outcome, owner)
        view = await self.view(rid, await self.record(rid, owner), reader)
        return json_response(view, 200 if view["state"] == "done" else 202)

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        owner, rid = self.owner(request), request.match_info["job_id"]
        rec = await self.record(rid, owner)
        return json_response(await self.view(rid, rec, Reader.of(request)))

    async def mix(self, request: web.Request) -> web.StreamResponse:
        """A custom mix of a finished job (shared.mixes): a job of its own, polled as any."""
        owner, rid = self.owner(request), request.match_info["job_id"]
        rec = await self.record(rid, owner)
        body = await read_mix_body(request)
        try:
            if rec.get("final_state") in ("failed", "cancelled"):
                raise NoStemsToMix()  # this request ended so, whatever became of its run
            song = await mixes.find_song(self.redis, rid, rec["key"])
            if song is None:
                raise MixExpired()
            accepted = await self.core.mix(
                Requester("api", f"api:{owner}"),
                song,
                body.stems,
                body.format,
                ApiReply(owner=owner),
                volumes=body.volumes,
            )
        except (MixNotReady, NoStemsToMix) as exc:
            raise ApiError(409, exc.code, cause=exc) from None
        except MixExpired as exc:
            raise ApiError(410, exc.code, cause=exc) from None
        except LimitReached as exc:
            raise limit_error(exc) from None
        return await self.answer(owner, accepted, Reader.of(request), song=rid)

    async def delete_job(self, request: web.Request) -> web.StreamResponse:
        owner, rid = self.owner(request), request.match_info["job_id"]
        rec = await self.record(rid, owner)
        cancelled = {"job_id": rid, "state": "cancelled"}
        reader = Reader.of(request)
        state = (await self.view(rid, rec, reader))["state"]
        if state not in FINAL:
            stored = await jobs.load_requests(self.redis, [rid])
            if stored and await jobs.cancel_request(self.redis, stored[0], storage=self.storage):
                error = Cancelled()
                await self.set_final(rid, "cancelled", error.code, error.params, error.user_message)
                state = "cancelled"
            else:
                state = (await self.view(rid, await self.record(rid, owner), reader))["state"]
        if state == "cancelled":
            return json_response(cancelled)
        # TRANSLATORS: {state} is the job's state as the API names it: done, failed, expired
        text = N_("This job has already finished ({state}).")
        raise ApiError(409, "already_finished", text, state=state)

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
                event.error_params,
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
    app.middlewares.append(json_routing_errors)
    app.router.add_post("/api/stemify", guard(api.stemify))
    app.router.add_get("/api/jobs/{job_id}", guard(api.get_job), allow_head=False)
    app.router.add_post("/api/jobs/{job_id}/mixes", guard(api.mix))
    app.router.add_delete("/api/jobs/{job_id}", guard(api.delete_job))
    app.router.add_get("/api/openapi.json", guard(api.openapi))
    if consume_events:

        async def events(_app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(api.consume(), name="api-events")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(events)
