"""The results page's HTML: the page of a job, and the page of a link that does not work.

Everything a user reads comes from the catalogues (shared.i18n) in the page's language, and is
escaped here; the texts page.js shows are embedded as JSON (:func:`script_texts`). The markup
loads only this server's page.css and page.js (see bots.page.handlers for the headers that
enforce it). Texts are looked up outside f-strings: Babel does not extract from inside them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

from bots.page.load import PageJob
from bots.page.mix_button import mix_controls, mix_texts
from bots.page.practice import practice_panel, practice_texts
from shared import formatting
from shared.i18n import LANGUAGES, NAMES, Texts, texts
from shared.links import LinkCheck, with_lang
from shared.music import key_label, tempo_label
from shared.stemnames import stem_label

FORMAT_LABEL = {"mp3": "MP3", "flac": "FLAC", "wav": "WAV"}
esc = html.escape


def markup(template: str, **values: str) -> str:
    """A catalogue text as HTML: the text escaped, then ``values`` (HTML already) filled in."""
    return esc(template).format(**values)


@cache
def script_texts(t: Texts) -> dict[str, str]:
    """The texts page.js shows, by key; ``{name}`` placeholders are filled in there."""
    return {
        "play": t.p_("button", "Play all"),
        "pause": t.p_("button", "Pause"),
        # TRANSLATORS: while the mixer downloads the stems: "Loading stems… 2/4"
        "loading": t._("Loading stems… {done}/{total}"),
        # TRANSLATORS: {error} is a technical detail such as "HTTP 404"
        "load_failed": t._("Could not load the stems ({error})."),
        # TRANSLATORS: {error} is a technical detail such as "HTTP 404"
        "no_waveforms": t._("Waveforms unavailable ({error})."),
        **mix_texts(t),
        **practice_texts(t),
    }


def script_json(t: Texts) -> str:
    """:func:`script_texts` as JSON that is safe inside a <script> element."""
    raw = json.dumps(script_texts(t), ensure_ascii=False, sort_keys=True)
    return raw.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _options_line(job: PageJob, t: Texts) -> str:
    parts = []
    if job.model:
        # TRANSLATORS: the Demucs model used, as in "Model htdemucs"
        parts.append(markup(t._("Model {model}"), model=f"<b>{esc(job.model)}</b>"))
    if job.stems_mode == "all":
        parts.append(esc(t.p_("mode", "all stems")))
    elif job.stems_mode and job.stems_mode != "mix":  # a custom mix: its file names it
        # TRANSLATORS: one stem and the rest of the song mixed, as in "vocals + the rest"
        rest = t._("{stem} + the rest", stem=stem_label(t, job.stems_mode))
        parts.append(esc(rest))
    if job.format:
        parts.append(esc(FORMAT_LABEL.get(job.format, job.format.upper())))
    if job.duration_s:
        parts.append(formatting.clock(job.duration_s))
    return " · ".join(parts)


def _music_line(job: PageJob, t: Texts) -> str:
    """The song's key and tempo under the options (HTML), or nothing when unknown."""
    analysis = job.analysis
    if analysis is None:
        return ""
    parts = []
    key, tempo = key_label(t, analysis.key), tempo_label(t, analysis.tempo)
    if key:
        # TRANSLATORS: the song's musical key on the results page, as in "Key A minor"
        parts.append(markup(t._("Key {key}"), key=f"<b>{esc(key)}</b>"))
    if tempo:
        # TRANSLATORS: the song's tempo on the results page, as in "Tempo 120 BPM"
        parts.append(markup(t._("Tempo {tempo}"), tempo=f"<b>{esc(tempo)}</b>"))
    return f'\n<p class="opts music">{" · ".join(parts)}</p>' if parts else ""


def _stem_row(stem_name: str, url: str, label: str, size: str, t: Texts) -> str:
    name, url = esc(stem_name), esc(url)
    mute = esc(t._("Mute {stem}", stem=label))
    solo = esc(t._("Solo {stem}", stem=label))
    volume = esc(t._("{stem} volume", stem=label))
    download = markup(t._("Download {stem}"), stem=esc(label))
    # TRANSLATORS: the mixer's mute and solo buttons: one letter each (Mute, Solo)
    mute_key, solo_key = esc(t.p_("mixer button", "M")), esc(t.p_("mixer button", "S"))
    return f"""<li class="stem" data-name="{name}">
<div class="head"><h2>{esc(label)}</h2>
<span class="ctl js-only"><button type="button" class="mute" aria-pressed="false" \
title="{mute}">{mute_key}</button><button type="button" class="solo" aria-pressed="false" \
title="{solo}">{solo_key}</button><input type="range" class="vol" min="0" max="1" step="0.01" \
value="1" aria-label="{volume}"></span></div>
<canvas class="wave js-only" height="64" aria-hidden="true"></canvas>
<audio controls preload="none" src="{url}"></audio>
<a class="dl" href="{url}" download>{download} <small>{size}</small></a>
</li>"""


def _switcher(t: Texts, page_link: str) -> str:
    """A link to this page in each language, named in that language."""
    items = []
    for lang in LANGUAGES:
        tag = texts(lang).tag
        current = ' aria-current="page"' if lang == t.lang else ""
        href = esc(with_lang(page_link, lang))
        items.append(
            f'<a href="{href}" hreflang="{tag}" lang="{tag}"{current}>{esc(NAMES[lang])}</a>'
        )
    label = esc(t._("Language"))
    return f'<nav class="langs" aria-label="{label}">{" ".join(items)}</nav>'


def render_page(
    job: PageJob,
    t: Texts,
    *,
    page_link: str,
    data_url: str,
    now: float,
    static_url: Callable[[str], str],
    mix_url: str | None = None,
) -> str:
    """The page in ``t``'s language: a player, a waveform canvas and a download per stem, plus
    the zip and the language switcher (links to ``page_link``, the signed page, in each
    language); works without JavaScript. ``static_url`` names a static file (with its
    version). With ``mix_url`` (where page.js posts the mixer's state: bots.page.mix), the
    mixer has a "Download this mix" button."""
    title = esc(job.title or t._("Untitled"))
    fmt = esc(FORMAT_LABEL.get(job.format or "", (job.format or "").upper()))
    expires_iso = datetime.fromtimestamp(job.expires_at, UTC).isoformat(timespec="seconds")
    expires = markup(
        # TRANSLATORS: {remaining} is a duration ("23 h 59 min"), {date} a date and time
        t._("Links expire in {remaining}, {date}."),
        remaining=esc(t.remaining(job.expires_at - now)),
        date=f'<time datetime="{expires_iso}">{esc(t.moment(job.expires_at))}</time>',
    )
    rows = [
        _stem_row(
            stem.name,
            stem.url,
            stem_label(t, stem.name),
            f"{fmt} · {esc(t.size(stem.size_bytes))}",
            t,
        )
        for stem in job.stems
    ]
    zip_link = ""
    if job.zip is not None:
        download_all = esc(t._("Download all stems"))
        zip_link = (
            f'<a class="dl zip" href="{esc(job.zip.url)}" download>{download_all} '
            f"<small>ZIP · {esc(t.size(job.zip.size_bytes))}</small></a>"
        )
    # TRANSLATORS: the browser tab's title: the song's title, then "stems"
    tab_title = markup(t._("{title} · stems"), title=title)
    mixer, play = esc(t._("Mixer")), esc(t.p_("button", "Play all"))
    # TRANSLATORS: the slider that moves through the song in the mixer
    position = esc(t.p_("seek slider", "Position"))
    return f"""<!doctype html>
<html lang="{t.tag}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{tab_title}</title>
<link rel="stylesheet" href="{static_url("page.css")}">
<script type="application/json" id="i18n">{script_json(t)}</script>
<script src="{static_url("player.js")}" defer></script>
<script src="{static_url("page.js")}" defer></script>
</head><body>
<main id="app" data-src="{esc(data_url)}">
<header><h1>{title}</h1>
<p class="opts">{_options_line(job, t)}</p>{_music_line(job, t)}
<p class="exp">{expires}</p></header>
<section class="mixer js-only" aria-label="{mixer}">
<button type="button" id="play" class="play">{play}</button>
<span id="clock" class="clock">0:00</span>
<input type="range" id="seek" min="0" max="1000" step="1" value="0" \
aria-label="{position}">
<p id="status" class="status" role="status"></p>
</section>
{practice_panel(t, static_url)}
<ul class="stems">
{"".join(rows)}
</ul>
{mix_controls(t, mix_url, job.format)}
<p class="all">{zip_link}</p>
<footer>{_switcher(t, page_link)}</footer>
</main></body></html>
"""


def link_error(t: Texts, check: LinkCheck | None, link_ttl_s: float) -> tuple[int, str, str]:
    """(HTTP status, heading, text) for a link that is expired, invalid (``check``) or whose
    job is gone (None)."""
    if check is LinkCheck.EXPIRED:
        text = t._(
            "Stems are kept for {ttl}. Send the song to the bot again to get new ones.",
            ttl=t.wait(link_ttl_s),
        )
        return 410, t._("This link has expired"), text
    if check is LinkCheck.INVALID:
        text = t._(
            "It may have been cut off or changed when it was copied. Open the link from the "
            "bot's message again, or send the song to the bot again."
        )
        return 403, t._("This link does not work"), text
    text = t._("They were deleted or replaced. Send the song to the bot again to get new ones.")
    return 404, t._("These stems are gone"), text


def render_error(
    t: Texts, check: LinkCheck | None, link_ttl_s: float, css_url: str
) -> tuple[int, str]:
    """(HTTP status, page) for a link that is expired, invalid (``check``) or whose job is
    gone (None), in ``t``'s language."""
    status, heading, text = link_error(t, check, link_ttl_s)
    body = f"""<!doctype html>
<html lang="{t.tag}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="robots" content="noindex"><title>{esc(heading)}</title>
<link rel="stylesheet" href="{css_url}">
</head><body><main class="error"><h1>{esc(heading)}</h1><p>{esc(text)}</p></main></body></html>
"""
    return status, body
