"""The aiohttp web server: signed downloads and health."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import PurePosixPath
from urllib.parse import quote

from aiohttp import web

from shared.config import Settings
from shared.links import LinkCheck, verify
from shared.storage import LocalStorage, Storage, check_name

log = logging.getLogger(__name__)

STORAGE = web.AppKey("storage", LocalStorage)
SETTINGS = web.AppKey("settings", Settings)
CHECKS = web.AppKey("checks", list)

HealthCheck = Callable[[], Awaitable[tuple[str, bool]]]

CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".zip": "application/zip",
}
LINK_TEXT = {
    LinkCheck.INVALID: "This link is invalid.",
    LinkCheck.EXPIRED: "This link has expired.",
}


def content_disposition(title: str, stem: str, ext: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    clean = re.sub(r"[\x00-\x1f\x7f/\\\"]+", " ", title).strip() or "track"
    label = "stems" if stem == "all" else stem
    name = f"{clean} - {label}{ext}"
    fallback = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace("%", "")
    )
    fallback = re.sub(r"\s+", " ", fallback).strip() or f"{label}{ext}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def download(request: web.Request) -> web.StreamResponse:
    """A stem or zip behind a signed, expiring link (Range supported by FileResponse)."""
    storage = request.app[STORAGE]
    job_key = request.match_info["job_key"]
    filename = request.match_info["filename"]
    path = f"/files/{job_key}/{quote(filename)}"
    check = verify(storage.signing_key, path, request.query.get("exp"), request.query.get("sig"))
    if check is not LinkCheck.OK:
        return web.Response(status=403, text=LINK_TEXT[check])
    try:
        check_name(job_key)
        check_name(filename)
    except ValueError:
        return web.Response(status=404, text="Not found.")
    meta = storage.read_meta(job_key)
    file = storage.job_dir(job_key) / filename
    files = meta.get("files") if meta else None
    if not isinstance(files, dict) or filename not in files or not file.is_file():
        return web.Response(status=404, text="Not found.")
    ext = PurePosixPath(filename).suffix
    max_age = max(0, int(int(request.query["exp"]) - time.time()))
    return web.FileResponse(
        file,
        headers={
            "Content-Type": CONTENT_TYPES.get(ext, "application/octet-stream"),
            "Content-Disposition": content_disposition(
                str(meta.get("title", "track")) if meta else "track", str(files[filename]), ext
            ),
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def healthz(request: web.Request) -> web.Response:
    results = dict([await check() for check in request.app[CHECKS]])
    ok = all(results.values())
    return web.json_response(
        {"status": "ok" if ok else "degraded", "checks": results}, status=200 if ok else 503
    )


async def cleanup_loop(storage: Storage, interval_s: float) -> None:
    """Delete expired files every ``interval_s``; log and go on after an error."""
    while True:
        try:
            removed = await storage.cleanup()
            if removed:
                log.info("cleanup removed %d expired items", removed)
        except Exception:
            log.exception("cleanup failed; trying again in %ss", interval_s)
        await asyncio.sleep(interval_s)


def create_app(
    settings: Settings,
    storage: LocalStorage,
    *,
    checks: list[HealthCheck] | None = None,
    run_cleanup: bool = True,
) -> web.Application:
    app = web.Application()
    app[STORAGE] = storage
    app[SETTINGS] = settings
    app[CHECKS] = list(checks or [])
    app.router.add_get("/files/{job_key}/{filename}", download)
    app.router.add_get("/healthz", healthz)
    if run_cleanup and settings.storage.cleanup_interval_s > 0:

        async def background(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(cleanup_loop(storage, settings.storage.cleanup_interval_s))
            yield
            task.cancel()

        app.cleanup_ctx.append(background)
    return app


async def run_web(settings: Settings, storage: LocalStorage) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(create_app(settings, storage), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web.web_host, settings.web.web_port)
        await site.start()
        log.info("web server on http://%s:%s", settings.web.web_host, settings.web.web_port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
