"""The results page behind the link a user gets in the chat.

``/r/<job key>?exp=...&sig=...`` is signed like the downloads (shared.links, the path
``/r/<job key>``), and the same ``exp``/``sig`` open ``/r/<job key>/data.json``: title, options,
expiry, and per stem its signed download URL and waveform peaks. Peaks are computed with ffmpeg
the first time they are asked for and cached next to the stem (worker.peaks), so each stem is
decoded once. The page works without JavaScript (players, downloads); bots/static/page.js adds
the waveforms and a Web Audio mixer. Nothing is loaded from another host.

An expired, tampered or dead link gets a short HTML page (410, 403, 404), not a bare status.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from redis.asyncio import Redis

from shared import jobs, links
from shared.config import Settings
from shared.links import PAGE_PREFIX, LinkCheck, sign_path, verify
from shared.schemas import JobResult
from shared.storage import META, LocalStorage, check_name, file_path
from worker import peaks as peaks_mod

log = logging.getLogger(__name__)

STATIC_FILES = {"page.js": "text/javascript", "page.css": "text/css"}
#: Content Security Policy: this server only, no inline script, no frames.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
}
FORMAT_LABEL = {"mp3": "MP3", "flac": "FLAC", "wav": "WAV"}


def page_path(job_key: str) -> str:
    """The URL path of a job's results page, as signed in its link (unquoted)."""
    return f"{PAGE_PREFIX}/{check_name(job_key)}"


def page_url(settings: Settings, result: JobResult) -> str:
    """The signed link to the results page of ``result``, valid as long as its files."""
    page_path(result.key)  # checks the key is a safe name
    key = settings.storage.signing_key_bytes()
    return links.page_url(settings.storage.public_url, key, result.key, result.expires_at)


# --- what a page shows --------------------------------------------------------------------


@dataclass(frozen=True)
class Stem:
    name: str
    filename: str
    size_bytes: int
    url: str


@dataclass(frozen=True)
class PageJob:
    key: str
    title: str
    expires_at: float
    stems: list[Stem]
    zip: Stem | None
    #: From the JobResult in Redis; None when the server has no Redis or the entry is gone.
    model: str | None = None
    stems_mode: str | None = None
    format: str | None = None
    duration_s: float | None = None


class PageState:
    def __init__(self, settings: Settings, storage: LocalStorage, redis: Redis | None) -> None:
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self.locks: dict[Path, asyncio.Lock] = {}
        self.static = {name: _load_static(name) for name in STATIC_FILES}

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={hashlib.sha256(self.static[name]).hexdigest()[:12]}"

    def relative_url(self, job_key: str, filename: str, expires_at: float) -> str:
        """A signed download link on this server (same origin as the page: the mixer fetches it)."""
        query = sign_path(self.storage.signing_key, file_path(job_key, filename), int(expires_at))
        return f"/files/{job_key}/{quote(filename)}?{query}"

    async def load(self, job_key: str) -> PageJob | None:
        """The published job (its meta.json), with the options from Redis when known."""
        await self.storage.prepare_local(job_key)  # S3: mirror the job into the cache
        folder = self.storage.job_dir(job_key)
        meta = await asyncio.to_thread(_read_json, folder / META)
        files = meta.get("files") if meta else None
        expires = meta.get("expires_at") if meta else None
        if not meta or not isinstance(files, dict) or not isinstance(expires, (int, float)):
            return None
        result = await self._result(job_key)
        sizes = await asyncio.to_thread(_sizes, folder, list(files))
        stems: list[Stem] = []
        zip_file: Stem | None = None
        for filename, name in files.items():
            if filename not in sizes:
                continue
            stem = Stem(
                str(name), filename, sizes[filename], self.relative_url(job_key, filename, expires)
            )
            if name == "all":
                zip_file = stem
            else:
                stems.append(stem)
        return PageJob(
            key=job_key,
            title=str(meta.get("title") or "Untitled"),
            expires_at=float(expires),
            stems=stems,
            zip=zip_file,
            model=result.model if result else None,
            stems_mode=result.stems_mode if result else None,
            format=result.format.value if result else _guess_format(stems),
            duration_s=result.duration_s if result else None,
        )

    async def _result(self, job_key: str) -> JobResult | None:
        if self.redis is None:
            return None
        try:
            raw = await self.redis.get(jobs.result_key(job_key))
            return JobResult.model_validate_json(raw) if raw else None
        except Exception:
            log.warning("results page: no job result for %s from Redis", job_key, exc_info=True)
            return None

    async def peaks(self, job_key: str, stem: Stem) -> list[float] | None:
        """Computed once per stem file (a lock per file; later requests read the cache)."""
        path = self.storage.job_dir(job_key) / stem.filename
        lock = self.locks.setdefault(path, asyncio.Lock())
        try:
            async with lock:
                return await peaks_mod.cached_peaks(path)
        except Exception:
            log.warning("no waveform peaks for %s/%s", job_key, stem.filename, exc_info=True)
            return None
        finally:
            if not lock.locked() and self.locks.get(path) is lock:
                del self.locks[path]


PAGE_STATE = web.AppKey("stembot_page", PageState)


def _load_static(name: str) -> bytes:
    return (resources.files("bots") / "static" / name).read_bytes()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sizes(folder: Path, names: list[str]) -> dict[str, int]:
    sizes = {}
    for name in names:
        try:
            path = folder / check_name(name)
            if not path.is_symlink() and path.is_file():
                sizes[name] = path.stat().st_size
        except (OSError, ValueError):
            continue
    return sizes


def _guess_format(stems: list[Stem]) -> str | None:
    return stems[0].filename.rpartition(".")[2].lower() if stems else None


# --- rendering ----------------------------------------------------------------------------


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def human_duration(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


def human_remaining(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _options_line(job: PageJob) -> str:
    parts = []
    if job.model:
        parts.append(f"Model <b>{html.escape(job.model)}</b>")
    if job.stems_mode:
        mode = "all stems" if job.stems_mode == "all" else f"{job.stems_mode} + the rest"
        parts.append(html.escape(mode))
    if job.format:
        parts.append(html.escape(FORMAT_LABEL.get(job.format, job.format.upper())))
    if job.duration_s:
        parts.append(human_duration(job.duration_s))
    return " · ".join(parts)


def render_page(state: PageState, job: PageJob, data_url: str, now: float) -> str:
    esc = html.escape
    title = esc(job.title)
    fmt = esc(FORMAT_LABEL.get(job.format or "", (job.format or "").upper()))
    expires_iso = datetime.fromtimestamp(job.expires_at, UTC).isoformat(timespec="seconds")
    expires_text = datetime.fromtimestamp(job.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for stem in job.stems:
        name = esc(stem.name)
        url = esc(stem.url)
        rows.append(
            f"""<li class="stem" data-name="{name}">
<div class="head"><h2>{name}</h2>
<span class="ctl js-only"><button type="button" class="mute" aria-pressed="false" \
title="Mute {name}">M</button><button type="button" class="solo" aria-pressed="false" \
title="Solo {name}">S</button><input type="range" class="vol" min="0" max="1" step="0.01" \
value="1" aria-label="{name} volume"></span></div>
<canvas class="wave js-only" height="64" aria-hidden="true"></canvas>
<audio controls preload="none" src="{url}"></audio>
<a class="dl" href="{url}" download>Download {name} <small>{fmt} · \
{human_size(stem.size_bytes)}</small></a>
</li>"""
        )
    zip_link = ""
    if job.zip is not None:
        zip_link = (
            f'<a class="dl zip" href="{esc(job.zip.url)}" download>Download all stems '
            f"<small>ZIP · {human_size(job.zip.size_bytes)}</small></a>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{title} · stems</title>
<link rel="stylesheet" href="{state.static_url("page.css")}">
<script src="{state.static_url("page.js")}" defer></script>
</head><body>
<main id="app" data-src="{esc(data_url)}">
<header><h1>{title}</h1>
<p class="opts">{_options_line(job)}</p>
<p class="exp">Links expire in {human_remaining(job.expires_at - now)}, \
<time datetime="{expires_iso}">{expires_text}</time>.</p></header>
<section class="mixer js-only" aria-label="Mixer">
<button type="button" id="play" class="play">Play all</button>
<span id="clock" class="clock">0:00</span>
<input type="range" id="seek" min="0" max="1000" step="1" value="0" aria-label="Position">
<p id="status" class="status" role="status"></p>
</section>
<ul class="stems">
{"".join(rows)}
</ul>
<p class="all">{zip_link}</p>
</main></body></html>
"""


ERRORS = {
    LinkCheck.EXPIRED: (
        410,
        "This link has expired",
        "Stems are kept for {ttl}. Send the song to the bot again to get new ones.",
    ),
    LinkCheck.INVALID: (
        403,
        "This link does not work",
        "It may have been cut off or changed when it was copied. Open the link from the "
        "bot's message again, or send the song to the bot again.",
    ),
    None: (
        404,
        "These stems are gone",
        "They were deleted or replaced. Send the song to the bot again to get new ones.",
    ),
}


def error_page(state: PageState, check: LinkCheck | None) -> web.Response:
    status, heading, text = ERRORS[check]
    ttl_h = state.settings.storage.link_ttl_s / 3600
    text = text.format(ttl=f"{ttl_h:g} h")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="robots" content="noindex"><title>{heading}</title>
<link rel="stylesheet" href="{state.static_url("page.css")}">
</head><body><main class="error"><h1>{heading}</h1><p>{text}</p></main></body></html>
"""
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, "Cache-Control": "no-store"},
    )


# --- handlers -----------------------------------------------------------------------------


def _check(request: web.Request, state: PageState) -> tuple[str, LinkCheck]:
    key = request.match_info["job_key"]
    try:
        path = page_path(key)
    except ValueError:
        return key, LinkCheck.INVALID
    exp, sig = request.query.get("exp"), request.query.get("sig")
    return key, verify(state.storage.signing_key, path, exp, sig)


def _max_age(expires_at: float) -> int:
    return max(0, int(expires_at - time.time()))


async def results_page(request: web.Request) -> web.Response:
    state = request.app[PAGE_STATE]
    key, check = _check(request, state)
    if check is not LinkCheck.OK:
        return error_page(state, check)
    job = await state.load(key)
    if job is None:
        return error_page(state, None)
    query = sign_path(state.storage.signing_key, page_path(key), int(request.query["exp"]))
    data_url = f"{page_path(key)}/data.json?{query}"
    return web.Response(
        text=render_page(state, job, data_url, time.time()),
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, "Cache-Control": "private, no-cache"},
    )


async def results_data(request: web.Request) -> web.Response:
    state = request.app[PAGE_STATE]
    key, check = _check(request, state)
    if check is not LinkCheck.OK:
        status, heading, _ = ERRORS[check]
        return web.json_response(
            {"error": heading}, status=status, headers={**PAGE_HEADERS, "Cache-Control": "no-store"}
        )
    job = await state.load(key)
    if job is None:
        return web.json_response(
            {"error": ERRORS[None][1]},
            status=404,
            headers={**PAGE_HEADERS, "Cache-Control": "no-store"},
        )
    peaks = await asyncio.gather(*(state.peaks(key, s) for s in job.stems))
    body = {
        "key": job.key,
        "title": job.title,
        "model": job.model,
        "stems_mode": job.stems_mode,
        "format": job.format,
        "duration_s": job.duration_s,
        "expires_at": job.expires_at,
        "stems": [
            {
                "name": s.name,
                "filename": s.filename,
                "size_bytes": s.size_bytes,
                "url": s.url,
                "peaks": p,
            }
            for s, p in zip(job.stems, peaks, strict=True)
        ],
        "zip": None
        if job.zip is None
        else {"filename": job.zip.filename, "size_bytes": job.zip.size_bytes, "url": job.zip.url},
    }
    return web.json_response(
        body,
        headers={**PAGE_HEADERS, "Cache-Control": f"private, max-age={_max_age(job.expires_at)}"},
    )


async def static_file(request: web.Request) -> web.Response:
    state = request.app[PAGE_STATE]
    name = request.match_info["name"]
    if name not in state.static:
        return web.Response(
            status=404, text="Not found.", headers={"X-Content-Type-Options": "nosniff"}
        )
    return web.Response(
        body=state.static[name],
        content_type=STATIC_FILES[name],
        charset="utf-8",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


def add_page_routes(
    app: web.Application,
    *,
    settings: Settings,
    storage: LocalStorage,
    redis: Redis | None = None,
) -> None:
    """``GET /r/{job_key}`` (the page), ``/r/{job_key}/data.json`` and ``/static/{name}``.

    ``redis`` (optional) supplies the model and options from the job's result; without it
    the page shows what the job folder knows (title, expiry, files).
    """
    app[PAGE_STATE] = PageState(settings, storage, redis)
    app.router.add_get(PAGE_PREFIX + "/{job_key}", results_page)
    app.router.add_get(PAGE_PREFIX + "/{job_key}/data.json", results_data)
    app.router.add_get("/static/{name}", static_file)
