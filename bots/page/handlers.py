"""The results page's routes: ``/r/<job key>``, its ``data.json``, its ``mix`` (the mixer's
state as one file: bots.page.mix), and the static files.

``/r/<job key>?exp=...&sig=...`` is signed like the downloads (shared.links, the path
``/r/<job key>``), and the same ``exp``/``sig`` open ``/r/<job key>/data.json``: title, options,
expiry, and per stem its signed download URL and the waveform peaks the worker stored with it
(null for a job published without them: its page shows the players without waveforms).
An expired, tampered or dead link gets a short HTML page (410, 403, 404), not a bare status.

The page is in the link's ``lang`` (not signed: the switcher's links are the same signed link
in another language), else in the browser's language (bots.page.language).
"""

from __future__ import annotations

import hashlib
import time
from importlib import resources

from aiohttp import web
from arq.connections import ArqRedis
from redis.asyncio import Redis

from bots.page import mix as page_mix
from bots.page.language import language_headers, request_texts
from bots.page.load import load_job, load_peaks
from bots.page.practice import SHIFTER_FILES
from bots.page.template import link_error, render_error, render_page
from bots.page.urls import page_path
from shared.config import Settings
from shared.core import Core
from shared.errors import ServiceUnavailable
from shared.i18n import Texts
from shared.links import PAGE_PREFIX, LinkCheck, sign_path, verify, with_lang
from shared.storage import Storage

JS = "text/javascript"
#: What /static/ serves: the page's own files and the vendored pitch shifter.
STATIC_FILES = {
    "page.js": JS,
    "player.js": JS,
    "page.css": "text/css",
    **dict.fromkeys(SHIFTER_FILES, JS),
}
#: Content Security Policy: this server only, no inline script; framed by nobody but Telegram
#: Web, which opens the page as a Mini App in a frame (the apps open it in a web view).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors https://web.telegram.org"
)
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
}


class PageState:
    """What the page's handlers share: settings, storage, Redis (optional), static files,
    and the core when Redis can queue (its mixes: bots.page.mix)."""

    def __init__(self, settings: Settings, storage: Storage, redis: Redis | None) -> None:
        self.settings = settings
        self.storage = storage
        self.redis = redis
        self.static = {name: _load_static(name) for name in STATIC_FILES}
        self.core = Core(redis, storage, settings) if isinstance(redis, ArqRedis) else None
        #: how long a mix is waited for before the page is told to try again
        self.mix_wait_s = page_mix.WAIT_S

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={hashlib.sha256(self.static[name]).hexdigest()[:12]}"


PAGE_STATE = web.AppKey("stembot_page", PageState)


def _load_static(name: str) -> bytes:
    return resources.files("bots").joinpath("static", *name.split("/")).read_bytes()


def error_page(state: PageState, check: LinkCheck | None, t: Texts) -> web.Response:
    status, body = render_error(
        t, check, state.settings.storage.link_ttl_s, state.static_url("page.css")
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, **language_headers(t), "Cache-Control": "no-store"},
    )


def error_data(state: PageState, check: LinkCheck | None, t: Texts) -> web.Response:
    status, heading, _ = link_error(t, check, state.settings.storage.link_ttl_s)
    return web.json_response(
        {"error": heading},
        status=status,
        headers={**PAGE_HEADERS, **language_headers(t), "Cache-Control": "no-store"},
    )


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
    """The page of a job behind a signed link."""
    state = request.app[PAGE_STATE]
    t = request_texts(request)
    key, check = _check(request, state)
    if check is not LinkCheck.OK:
        return error_page(state, check, t)
    job = await load_job(state.storage, state.redis, key)
    if job is None:
        return error_page(state, None, t)
    query = sign_path(state.storage.signing_key, page_path(key), int(request.query["exp"]))
    mixable = state.core is not None and job.stems_mode not in (None, "mix")
    page = render_page(
        job,
        t,
        page_link=f"{page_path(key)}?{query}",
        data_url=with_lang(f"{page_path(key)}/data.json?{query}", t.lang),
        now=time.time(),
        static_url=state.static_url,
        mix_url=with_lang(f"{page_path(key)}/mix?{query}", t.lang) if mixable else None,
    )
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, **language_headers(t), "Cache-Control": "private, no-cache"},
    )


async def results_data(request: web.Request) -> web.Response:
    """The job as JSON for page.js: stems with their links and stored peaks."""
    state = request.app[PAGE_STATE]
    t = request_texts(request)
    key, check = _check(request, state)
    if check is not LinkCheck.OK:
        return error_data(state, check, t)
    job = await load_job(state.storage, state.redis, key)
    if job is None:
        return error_data(state, None, t)
    peaks = await load_peaks(state.storage, job)
    body = {
        "key": job.key,
        "title": job.title or t._("Untitled"),
        "model": job.model,
        "stems_mode": job.stems_mode,
        "format": job.format,
        "duration_s": job.duration_s,
        "analysis": job.analysis.model_dump(mode="json") if job.analysis else None,
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
    cache = f"private, max-age={_max_age(job.expires_at)}"
    return web.json_response(
        body, headers={**PAGE_HEADERS, **language_headers(t), "Cache-Control": cache}
    )


async def results_mix(request: web.Request) -> web.Response:
    """The mixer's state made into one file (bots.page.mix): its link as JSON for page.js,
    or the refusal in the page's language."""
    state = request.app[PAGE_STATE]
    t = request_texts(request)
    key, check = _check(request, state)
    if check is not LinkCheck.OK:
        return error_data(state, check, t)
    headers = {**PAGE_HEADERS, **language_headers(t), "Cache-Control": "no-store"}
    try:
        if state.core is None:
            raise page_mix.refusal(ServiceUnavailable(), t)
        body = await page_mix.read_body(request, t)
        result = await page_mix.make_mix(state.core, key, body, t, timeout_s=state.mix_wait_s)
    except page_mix.MixRefused as refused:
        return web.json_response(
            {"error": refused.text}, status=refused.status, headers={**headers, **refused.headers}
        )
    return web.json_response(page_mix.answer(result, state.storage.signing_key, t), headers=headers)


async def static_file(request: web.Request) -> web.Response:
    """page.js, player.js, page.css and the vendored shifter, cached for good (their URLs
    carry a version)."""
    state = request.app[PAGE_STATE]
    name = request.match_info["name"]
    if name not in state.static:
        t = request_texts(request)
        return web.Response(
            status=404,
            text=t._("Not found."),
            headers={"X-Content-Type-Options": "nosniff", **language_headers(t)},
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
    storage: Storage,
    redis: Redis | None = None,
) -> None:
    """``GET /r/{job_key}`` (the page), ``/r/{job_key}/data.json``, ``POST
    /r/{job_key}/mix`` (bots.page.mix) and ``/static/{name}`` (``name`` one of
    :data:`STATIC_FILES`).

    ``redis`` (optional) supplies the model and options from the job's result; without it
    the page shows what the job folder knows (title, expiry, files), and makes no mixes
    (nor with a Redis client that cannot queue: an ArqRedis is needed).
    """
    app[PAGE_STATE] = PageState(settings, storage, redis)
    app.router.add_get(PAGE_PREFIX + "/{job_key}", results_page)
    app.router.add_get(PAGE_PREFIX + "/{job_key}/data.json", results_data)
    app.router.add_post(PAGE_PREFIX + "/{job_key}/mix", results_mix)
    app.router.add_get("/static/{name:.+}", static_file)
