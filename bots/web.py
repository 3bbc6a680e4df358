"""The aiohttp web server: signed downloads, health, and the periodic storage cleanup.

A download that fails says why in the link's ``lang`` or the browser's language (as the
results page: bots.page.language)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import PurePosixPath

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from arq.connections import ArqRedis
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bots.api import add_api_routes
from bots.page import add_page_routes
from bots.page.language import language_headers, request_texts
from shared import metrics
from shared.config import Settings
from shared.health import HealthCheck
from shared.i18n import N_, Texts
from shared.links import LinkCheck, verify
from shared.storage import CONTENT_TYPES, Storage, content_disposition, file_path

log = logging.getLogger(__name__)

#: A health check: True when healthy. Named after the function (``check_redis`` -> "redis").

STORAGE: web.AppKey[Storage] = web.AppKey("storage")
CHECKS = web.AppKey("checks", tuple[HealthCheck, ...])

CHECK_TIMEOUT_S = 5.0
LINK_TEXT = {
    LinkCheck.INVALID: N_("This link is invalid."),
    LinkCheck.EXPIRED: N_("This link has expired."),
}
NOT_FOUND = N_("Not found.")
BASE_HEADERS = {"X-Content-Type-Options": "nosniff"}


def _text(status: int, t: Texts, text: str) -> web.Response:
    """A refusal, ``text`` (a catalogue message) in ``t``'s language."""
    headers = {**BASE_HEADERS, **language_headers(t), "Cache-Control": "no-store"}
    return web.Response(status=status, text=t._(text), headers=headers)


async def download(request: web.Request) -> web.StreamResponse:
    """A stem or zip behind a signed, expiring link (Range and HEAD via FileResponse)."""
    storage = request.app[STORAGE]
    job_key, filename = request.match_info["job_key"], request.match_info["filename"]
    exp = request.query.get("exp")
    check = verify(storage.signing_key, file_path(job_key, filename), exp, request.query.get("sig"))
    if check is not LinkCheck.OK:
        return _text(403, request_texts(request), LINK_TEXT[check])
    found = await storage.find_file(job_key, filename)
    if found is None:
        return _text(404, request_texts(request), NOT_FOUND)
    ext = PurePosixPath(filename).suffix.lower()
    max_age = max(0, int(exp or 0) - int(time.time()))
    return web.FileResponse(
        found.path,
        headers={
            **BASE_HEADERS,
            "Content-Type": CONTENT_TYPES.get(ext, "application/octet-stream"),
            "Content-Disposition": content_disposition(found.title, found.stem, ext),
            "Cache-Control": f"private, max-age={max_age}",
        },
    )


async def _run_check(check: HealthCheck) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):  # (3.11's wait_for can drop a cancel)
            return bool(await check())
    except Exception:
        log.warning("health check %s failed", _check_name(check), exc_info=True)
        return False


def _check_name(check: HealthCheck) -> str:
    name = getattr(check, "__name__", type(check).__name__)
    return name.removeprefix("check_")


async def healthz(request: web.Request) -> web.Response:
    """200 {"status": "ok"} when every check passes, else 503 with each check's result."""
    checks = request.app[CHECKS]
    results = await asyncio.gather(*(_run_check(c) for c in checks))
    body: dict[str, object] = {"status": "ok" if all(results) else "degraded"}
    if checks:
        body["checks"] = {_check_name(c): ok for c, ok in zip(checks, results, strict=True)}
    return web.json_response(body, status=200 if all(results) else 503, headers=BASE_HEADERS)


async def cleanup_loop(storage: Storage, interval_s: float) -> None:
    """Delete expired files every ``interval_s``, for ever; log and go on after an error."""
    while True:
        try:
            removed = await storage.cleanup()
        except Exception:
            log.exception("storage cleanup failed; trying again in %gs", interval_s)
        else:
            log.log(logging.INFO if removed else logging.DEBUG, "cleanup removed %d items", removed)
        await asyncio.sleep(interval_s)


#: A metric that cannot be written in this time is dropped (the response does not wait).
METRIC_TIMEOUT_S = 1.0


def request_timer(redis: Redis) -> Middleware:
    """Record each request's duration by route pattern (never the raw path: no job keys or
    signatures in the metrics) and status class, in Redis next to the other metrics."""

    async def record(request: web.Request, status: int, started: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        try:
            async with asyncio.timeout(METRIC_TIMEOUT_S):
                await metrics.observe(
                    redis,
                    metrics.HTTP_SECONDS,
                    time.perf_counter() - started,
                    route=route,
                    status=f"{status // 100}xx",
                )
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("request metric not recorded: %s", exc)

    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            await record(request, exc.status, started)
            raise
        except Exception:
            await record(request, 500, started)
            raise
        await record(request, response.status, started)
        return response

    return timed


def create_app(
    settings: Settings,
    storage: Storage,
    *,
    checks: Sequence[HealthCheck] = (),
    metrics: Callable[[], Awaitable[Collector]] | None = None,
    run_cleanup: bool = True,
    redis: ArqRedis | None = None,
) -> web.Application:
    """Downloads at ``/files/{job_key}/{filename}`` (GET, HEAD) and ``/healthz``; with
    ``redis``, every request's duration goes to the metrics."""
    app = web.Application(middlewares=[request_timer(redis)] if redis is not None else [])
    app[STORAGE] = storage
    app[CHECKS] = tuple(checks)
    app.router.add_get("/files/{job_key}/{filename}", download)
    app.router.add_get("/healthz", healthz)
    add_page_routes(app, settings=settings, storage=storage, redis=redis)
    if redis is not None and settings.web.api_keys:
        add_api_routes(
            app, settings=settings, storage=storage, redis=redis, api_keys=settings.web.api_keys
        )
    if metrics is not None:
        snapshot = metrics

        async def metrics_handler(request: web.Request) -> web.Response:
            """The metrics in the format the scraper accepts (Prometheus text by default)."""
            encode, content_type = choose_encoder(request.headers.get(hdrs.ACCEPT, ""))
            return web.Response(
                body=encode(await snapshot()),
                headers={hdrs.CONTENT_TYPE: content_type, hdrs.CACHE_CONTROL: "no-store"},
            )

        app.router.add_get("/metrics", metrics_handler)
    interval = settings.storage.cleanup_interval_s
    if run_cleanup and interval > 0:

        async def background_cleanup(_app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(cleanup_loop(storage, interval), name="storage-cleanup")
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(background_cleanup)
    return app


async def run_web(
    settings: Settings,
    storage: Storage,
    checks: Sequence[HealthCheck] = (),
    metrics: Callable[[], Awaitable[Collector]] | None = None,
    redis: ArqRedis | None = None,
) -> None:
    """Serve on ``web_host:web_port`` until cancelled."""
    app = create_app(settings, storage, checks=checks, metrics=metrics, redis=redis)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web.web_host, settings.web.web_port)
        await site.start()
        log.info("web server on http://%s:%s", settings.web.web_host, settings.web.web_port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
