"""What the bot's messages look like: the status message (progress, the final links or the
reason, its buttons) and the /settings panel, in the language of the texts ``t`` given."""

from __future__ import annotations

import re
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bots.telegram.store import AUTO, FOUR_STEM_MODELS, MODES, Prefs
from bots.telegram.texts import mode_label, switch_label
from shared import errors
from shared.errors import Cancelled
from shared.i18n import LANGUAGES, NAMES, Texts
from shared.links import with_lang
from shared.models import MODEL_SOURCES
from shared.music import music_line
from shared.schemas import JobResult, JobState, ProgressEvent
from shared.stemnames import stem_label

BAR_WIDTH = 12
MB = 1024 * 1024


def bar(percent: float) -> str:
    filled = max(0, min(BAR_WIDTH, int(BAR_WIDTH * percent / 100)))
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def head(title: str) -> str:
    """The first line of a status message: the song (HTML)."""
    return f"🎵 {escape(title)}\n"


def progress_text(t: Texts, title: str, event: ProgressEvent) -> str:
    """The status message while a job waits or runs (HTML)."""
    state = event.state
    if state == JobState.QUEUED:
        if event.position is None:
            line = t._("⏳ Waiting for a worker…")
        elif event.position == 0:
            line = t._("⏳ In the queue: next up")
        else:
            line = t.n_(
                "⏳ In the queue: {n} ahead of you",
                "⏳ In the queue: {n} ahead of you",
                event.position,
            )
        if event.eta_s:
            # TRANSLATORS: after the queue position: about how long until the song is done
            line += " " + t._("· about {eta}", eta=t.eta(event.eta_s))
    elif state == JobState.DOWNLOADING:
        got = t.number(round(event.percent or 0))
        line = t._("⬇️ Downloading from YouTube… {percent}%", percent=got)
    elif state == JobState.DECODING:
        line = t._("🔎 Reading the audio…")
    elif state == JobState.SEPARATING:
        percent = event.percent or 0
        # TRANSLATORS: {bar} is a progress bar drawn with blocks (█░░░)
        line = t._(
            "🎛 Separating {bar} {percent}%", bar=bar(percent), percent=t.number(round(percent))
        )
        if event.eta_s:
            # TRANSLATORS: after the progress bar: about how long the separation still takes
            line += " " + t._("· about {eta} left", eta=t.eta(event.eta_s))
    else:
        line = t._("💾 Encoding the stems…")
    return head(title) + line


def fetching_text(t: Texts, title: str) -> str:
    """The status message while the bot fetches the user's file from Telegram (HTML)."""
    return head(title) + t._("📥 Getting the file from Telegram…")


def choose_mode_text(t: Texts, title: str) -> str:
    """The question under a song when the user has no default mode (HTML)."""
    return head(title) + t._("How should I split it?")


def final_text(t: Texts, title: str, event: ProgressEvent, upload_limit: int | None) -> str:
    """The status message at the end: links when done, else the reason (HTML)."""
    if event.state == JobState.DONE and event.result is not None:
        return done_text(t, event.result, upload_limit)
    if event.state == JobState.CANCELLED and event.error_code is None:
        reason = Cancelled().message(t)
    else:
        code, params = event.error_code, event.error_params
        reason = errors.render(t, code, params, fallback=event.error_message)
    mark = "🚫" if event.state == JobState.CANCELLED else "❌"
    return f"{head(title)}{mark} {escape(reason)}"


def _link(url: str, label: str) -> str:
    return f'<a href="{escape(url)}">{escape(label)}</a>'


def done_text(t: Texts, result: JobResult, upload_limit: int | None) -> str:
    """The final links, how long they work, and a word on stems too big to come as files."""
    mode = escape(mode_name(t, result))
    expires = t.moment(result.expires_at)
    lines = [
        t._("✅ Done: {title}", title=escape(result.title)),
        f"{escape(result.model)} · {mode} · {result.format.value.upper()}",
    ]
    music = music_line(t, result.analysis)
    if music:
        lines.append(f"🎼 {escape(music)}")
    lines += ["", t._("Download links, valid until {expires}:", expires=expires)]
    if result.page_url:
        page = with_lang(result.page_url, t.lang)
        lines.append(_link(page, t._("▶ Listen, mix and download")))
    for stem in result.stems:
        size = t.megabytes(stem.size_bytes)
        lines.append(f"• {_link(stem.url, stem_label(t, stem.name))} ({size})")
    if result.zip is not None:  # (a mix is one file: it has none)
        zip_label = t._("all stems (zip)")
        zipped = _link(result.zip.url, zip_label)
        lines.append(f"• {zipped} ({t.megabytes(result.zip.size_bytes)})")
    if upload_limit is not None and any(s.size_bytes > upload_limit for s in result.stems):
        limit = t.number(upload_limit // MB)
        note = t._("Stems over {mb} MB are only available through the links.", mb=limit)
        lines.append("\n" + note)
    return "\n".join(lines)


def mode_name(t: Texts, result: JobResult) -> str:
    if result.stems_mode == "all":
        return mode_label(t, "6" if len(result.stems) == 6 else "4")
    if result.stems_mode == "vocals":
        return mode_label(t, "2")
    return " + ".join(stem_label(t, s.name) for s in result.stems)


def cancel_markup(t: Texts) -> InlineKeyboardMarkup:
    label = t.p_("button", "Cancel")
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data="cancel")]])


def player_button(t: Texts, result: JobResult, chat_id: int) -> InlineKeyboardButton | None:
    """The button under a done message that opens the results page's player: a Mini App
    (opens inside Telegram) when the page is HTTPS and the chat private, as Telegram requires
    of Mini App buttons; a link button otherwise. None for a result without a page."""
    if not result.page_url:
        return None
    url = with_lang(result.page_url, t.lang)
    label = "▶ " + t.p_("button", "Open player")
    if url.startswith("https://") and chat_id > 0:  # (a group's or channel's id is negative)
        return InlineKeyboardButton(label, web_app=WebAppInfo(url))
    return InlineKeyboardButton(label, url=url)


#: The backing tracks offered under a done song, each "every stem but this one", in this
#: order where the model has the stem (karaoke, drummers, bassists, guitarists, pianists).
BACKING_TRACKS = ("vocals", "drums", "bass", "guitar", "piano")
#: Callback data of the mix buttons: make a mix, show the custom chooser, back to the
#: backing tracks. ``<key>`` is the song's result key, ``<mask>`` the stems kept (bit i: the
#: model's stem i).
MIX, CHOOSE, BACK = "mix", "mixc", "mixb"
MIX_DATA = re.compile(
    r"(?P<action>mixc?):(?P<key>[0-9a-f]{32}):(?P<mask>[0-9]{1,2})|mixb:(?P<back>[0-9a-f]{32})"
)


def mask_of(sources: tuple[str, ...], kept: tuple[str, ...] | set[str]) -> int:
    return sum(1 << i for i, stem in enumerate(sources) if stem in kept)


def stems_of(sources: tuple[str, ...], mask: int) -> tuple[str, ...]:
    return tuple(stem for i, stem in enumerate(sources) if mask >> i & 1)


def mixable(result: JobResult) -> bool:
    """A song whose stems can be mixed: a separation (not a mix) of a model we know."""
    return result.stems_mode != "mix" and len(MODEL_SOURCES.get(result.model, ())) > 1


def final_markup(t: Texts, result: JobResult, chat_id: int) -> InlineKeyboardMarkup | None:
    """The buttons under a done message: the player, then the common backing tracks (the
    song without one stem) and a custom mix. None when there is nothing to offer."""
    rows: list[list[InlineKeyboardButton]] = []
    if player := player_button(t, result, chat_id):
        rows.append([player])
    if mixable(result):
        sources = MODEL_SOURCES[result.model]
        tracks = [
            InlineKeyboardButton(
                "🎚 " + stem_label(t, f"no_{stem}"),
                callback_data=f"{MIX}:{result.key}:{mask_of(sources, set(sources) - {stem})}",
            )
            for stem in BACKING_TRACKS
            if stem in sources
        ]
        rows += [tracks[i : i + 3] for i in range(0, len(tracks), 3)]
        every = mask_of(sources, sources)
        custom = t.p_("button", "Custom mix…")
        rows.append(
            [InlineKeyboardButton("🎛 " + custom, callback_data=f"{CHOOSE}:{result.key}:{every}")]
        )
    return InlineKeyboardMarkup(rows) if rows else None


def chooser_markup(t: Texts, key: str, model: str, mask: int) -> InlineKeyboardMarkup:
    """The custom mix chooser: a toggle per stem (✅ kept), then make it, or go back."""
    sources = MODEL_SOURCES[model]
    toggles = [
        InlineKeyboardButton(
            ("✅ " if mask >> i & 1 else "⬜ ") + stem_label(t, stem),
            callback_data=f"{CHOOSE}:{key}:{mask ^ (1 << i)}",
        )
        for i, stem in enumerate(sources)
    ]
    rows = [toggles[i : i + 3] for i in range(0, len(toggles), 3)]
    make = InlineKeyboardButton(
        "🎧 " + t.p_("button", "Make this mix"), callback_data=f"{MIX}:{key}:{mask}"
    )
    back = InlineKeyboardButton("↩ " + t.p_("button", "Back"), callback_data=f"{BACK}:{key}")
    return InlineKeyboardMarkup([*rows, [make, back]])


def mode_markup(t: Texts) -> InlineKeyboardMarkup:
    modes = [InlineKeyboardButton(mode_label(t, m), callback_data=f"mode:{m}") for m in "426"]
    return InlineKeyboardMarkup([modes])


def language_name(t: Texts, prefs: Prefs) -> str:
    """The language setting: a language by its own name, or Telegram's."""
    return NAMES[prefs.lang] if prefs.lang else t._("Automatic (from Telegram)")


def settings_text(t: Texts, prefs: Prefs, default_model: str) -> str:
    return t._(
        "Your defaults:\nModel: {model}\nMode: {mode}\nFormat: {format}\n"
        "Send stems as files: {files}\nLanguage: {language}\n\nTap to change.",
        model=prefs.model or default_model,
        mode=mode_label(t, prefs.mode),
        format=prefs.format.upper(),
        files=switch_label(t, prefs.files),
        language=language_name(t, prefs),
    )


def settings_markup(t: Texts, prefs: Prefs, default_model: str) -> InlineKeyboardMarkup:
    def button(label: str, name: str, value: str, chosen: bool) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            ("✓ " if chosen else "") + label, callback_data=f"set:{name}:{value}"
        )

    model = prefs.model or default_model
    models = [button(m, "model", m, m == model) for m in FOUR_STEM_MODELS]
    modes = [button(mode_label(t, m), "mode", m, m == prefs.mode) for m in MODES]
    formats = [button(f.upper(), "format", f, f == prefs.format) for f in ("mp3", "flac", "wav")]
    switch = "0" if prefs.files else "1"
    files = button(f"📎 {switch_label(t, prefs.files)}", "files", switch, False)
    langs = [button(NAMES[lang], "lang", lang, lang == prefs.lang) for lang in LANGUAGES]
    auto = button(t._("Automatic (from Telegram)"), "lang", AUTO, prefs.lang is None)
    rows = [models[:2], models[2:], modes[:2], modes[2:], formats, [files]]
    return InlineKeyboardMarkup([*rows, langs[:3], langs[3:], [auto]])
