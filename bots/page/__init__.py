"""The results page behind the link a user gets in the chat.

``load`` reads the job (storage, Redis, the peaks the worker stored), ``template`` renders
it in the page's language (``language`` picks it), ``handlers`` serves it; ``urls`` names
it. The page works without JavaScript (players, downloads); bots/static/page.js adds the
waveforms, the mixer and the practice controls (``practice``: tempo, pitch, A-B loop, keys)
over the streaming player in bots/static/player.js, its texts embedded in the page. Nothing
is loaded from another host (the pitch shifter is vendored: bots/static/vendor/), and nothing
here decodes audio.
"""

from __future__ import annotations

from bots.page.handlers import PAGE_STATE, PageState, add_page_routes
from bots.page.language import request_texts
from bots.page.load import PageJob, Stem, load_job, load_peaks
from bots.page.template import render_error, render_page
from bots.page.urls import page_path, page_url

__all__ = [
    "PAGE_STATE",
    "PageJob",
    "PageState",
    "Stem",
    "add_page_routes",
    "load_job",
    "load_peaks",
    "page_path",
    "page_url",
    "render_error",
    "render_page",
    "request_texts",
]
