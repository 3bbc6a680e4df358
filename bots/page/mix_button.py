"""The mixer's "Download this mix" button (bots.page.mix makes the file): a format choice,
the button, and a line for what happens; shown only when JavaScript runs, and only on the
page of a song the server can mix (bots.page.handlers)."""

from __future__ import annotations

import html
from functools import cache

from shared import mixes
from shared.i18n import Texts

FORMATS = {"mp3": "MP3", "flac": "FLAC", "wav": "WAV"}
esc = html.escape


@cache
def mix_texts(t: Texts) -> dict[str, str]:
    """The texts page.js shows for the mix, by key."""
    return {
        # TRANSLATORS: while the server makes the file of the mixer's state
        "mix_making": t._("Making the mix…"),
        "mix_ready": t._("Your mix is ready: its download has started."),
        # TRANSLATORS: {error} is a technical detail such as "HTTP 502"
        "mix_failed": t._("Could not make the mix ({error})."),
        # what the core says of a mix of every stem, or of none
        "mix_every": t._(mixes.EVERY_STEM),
        "mix_none": t._(mixes.EMPTY),
    }


def mix_controls(t: Texts, mix_url: str | None, song_format: str | None) -> str:
    """The format choice (the song's by default), the button and its status line, under the
    stems (not in the mixer's sticky bar: on a phone that bar must stay small); nothing
    without ``mix_url``."""
    if mix_url is None:
        return ""
    # TRANSLATORS: the button that makes one file of what the mixer plays (mutes, solos, volumes)
    label = esc(t.p_("button", "Download this mix"))
    # TRANSLATORS: the choice of the mix file's format (MP3, FLAC, WAV)
    fmt_label = esc(t._("Format of the mix"))
    chosen = song_format if song_format in FORMATS else "mp3"
    options = "".join(
        f'<option value="{value}"{" selected" if value == chosen else ""}>{name}</option>'
        for value, name in FORMATS.items()
    )
    return f"""<div class="mixdown js-only" id="mixdown">
<select id="mix-format" aria-label="{fmt_label}" title="{fmt_label}">{options}</select>
<button type="button" id="mix-download" class="mix-download" data-url="{esc(mix_url)}">\
{label}</button>
<span id="mix-status" class="mix-status" role="status"></span>
</div>"""
