"""The results page's HTML: the page of a job, and the page of a link that does not work.

Everything a user reads is escaped here; the markup loads only this server's page.css and
page.js (see bots.page.handlers for the headers that enforce it).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime

from bots.page.load import PageJob
from shared import formatting
from shared.links import LinkCheck

FORMAT_LABEL = {"mp3": "MP3", "flac": "FLAC", "wav": "WAV"}


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
        parts.append(formatting.clock(job.duration_s))
    return " · ".join(parts)


def render_page(job: PageJob, data_url: str, now: float, static_url: Callable[[str], str]) -> str:
    """The page: a player, a waveform canvas and a download per stem, plus the zip; works
    without JavaScript. ``static_url`` names a static file (with its version)."""
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
{formatting.size(stem.size_bytes)}</small></a>
</li>"""
        )
    zip_link = ""
    if job.zip is not None:
        zip_link = (
            f'<a class="dl zip" href="{esc(job.zip.url)}" download>Download all stems '
            f"<small>ZIP · {formatting.size(job.zip.size_bytes)}</small></a>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{title} · stems</title>
<link rel="stylesheet" href="{static_url("page.css")}">
<script src="{static_url("page.js")}" defer></script>
</head><body>
<main id="app" data-src="{esc(data_url)}">
<header><h1>{title}</h1>
<p class="opts">{_options_line(job)}</p>
<p class="exp">Links expire in {formatting.remaining(job.expires_at - now)}, \
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


def render_error(check: LinkCheck | None, link_ttl_s: float, css_url: str) -> tuple[int, str]:
    """(HTTP status, page) for a link that is expired, invalid (``check``) or whose job is
    gone (None)."""
    status, heading, text = ERRORS[check]
    text = text.format(ttl=f"{link_ttl_s / 3600:g} h")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="robots" content="noindex"><title>{heading}</title>
<link rel="stylesheet" href="{css_url}">
</head><body><main class="error"><h1>{heading}</h1><p>{text}</p></main></body></html>
"""
    return status, body
