"""What the status message looks like: progress lines, the final links, the buttons."""

from __future__ import annotations

import time
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.telegram.store import FOUR_STEM_MODELS, MODES, Prefs
from bots.telegram.texts import duration, error_text, text
from shared.schemas import JobResult, JobState, ProgressEvent

BAR_WIDTH = 12
MB = 1024 * 1024


def bar(percent: float) -> str:
    filled = max(0, min(BAR_WIDTH, int(BAR_WIDTH * percent / 100)))
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def progress_text(lang: str, title: str, event: ProgressEvent) -> str:
    """The status message while a job waits or runs (HTML)."""
    head = f"🎵 {escape(title)}\n"
    state = event.state
    if state == JobState.QUEUED:
        if event.position is None:
            line = text(lang, "waiting")
        elif event.position == 0:
            line = text(lang, "queued_next")
        else:
            line = text(lang, "queued_ahead", ahead=event.position)
        if event.eta_s:
            line += text(lang, "eta", eta=duration(lang, event.eta_s))
    elif state == JobState.DOWNLOADING:
        line = text(lang, "downloading", percent=round(event.percent or 0))
    elif state == JobState.DECODING:
        line = text(lang, "decoding")
    elif state == JobState.SEPARATING:
        percent = event.percent or 0
        line = text(lang, "separating", bar=bar(percent), percent=round(percent))
        if event.eta_s:
            line += text(lang, "eta_left", eta=duration(lang, event.eta_s))
    else:
        line = text(lang, "encoding")
    return head + line


def final_text(lang: str, title: str, event: ProgressEvent, upload_limit: int | None) -> str:
    """The status message at the end: links when done, else the reason (HTML)."""
    if event.state == JobState.DONE and event.result is not None:
        return done_text(lang, event.result, upload_limit)
    english = event.error_message or event.state.value
    mark = "🚫" if event.state == JobState.CANCELLED else "❌"
    return f"🎵 {escape(title)}\n{mark} {escape(error_text(lang, event.error_code, english))}"


def done_text(lang: str, result: JobResult, upload_limit: int | None) -> str:
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result.expires_at))
    lines = [
        text(
            lang,
            "done",
            title=escape(result.title),
            model=escape(result.model),
            mode=escape(mode_name(lang, result)),
            format=result.format.value.upper(),
            expires=expires,
        )
    ]
    if result.page_url:
        lines.append(f'<a href="{escape(result.page_url)}">{escape(text(lang, "open_page"))}</a>')
    for stem in result.stems:
        lines.append(f'• <a href="{escape(stem.url)}">{escape(stem.name)}</a> ({_mb(stem)})')
    zip_name = escape(text(lang, "all_stems_zip"))
    lines.append(f'• <a href="{escape(result.zip.url)}">{zip_name}</a> ({_mb(result.zip)})')
    if upload_limit is not None and any(s.size_bytes > upload_limit for s in result.stems):
        lines.append("\n" + text(lang, "files_too_big", mb=upload_limit // MB))
    return "\n".join(lines)


def _mb(stem: object) -> str:
    return f"{getattr(stem, 'size_bytes', 0) / MB:.1f} MB"


def mode_name(lang: str, result: JobResult) -> str:
    if result.stems_mode == "all":
        return text(lang, "mode_6" if len(result.stems) == 6 else "mode_4")
    if result.stems_mode == "vocals":
        return text(lang, "mode_2")
    return " + ".join(s.name for s in result.stems)


def cancel_markup(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text(lang, "cancel"), callback_data="cancel")]]
    )


def mode_markup(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text(lang, "mode_4"), callback_data="mode:4"),
                InlineKeyboardButton(text(lang, "mode_2"), callback_data="mode:2"),
                InlineKeyboardButton(text(lang, "mode_6"), callback_data="mode:6"),
            ]
        ]
    )


def settings_text(lang: str, prefs: Prefs, default_model: str) -> str:
    return text(
        lang,
        "settings",
        model=prefs.model or default_model,
        mode=text(lang, f"mode_{prefs.mode}"),
        format=prefs.format.upper(),
        files=text(lang, "on" if prefs.files else "off"),
    )


def settings_markup(lang: str, prefs: Prefs, default_model: str) -> InlineKeyboardMarkup:
    def button(label: str, name: str, value: str, chosen: bool) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            ("✓ " if chosen else "") + label, callback_data=f"set:{name}:{value}"
        )

    model = prefs.model or default_model
    models = [button(m, "model", m, m == model) for m in FOUR_STEM_MODELS]
    modes = [button(text(lang, f"mode_{m}"), "mode", m, m == prefs.mode) for m in MODES]
    formats = [button(f.upper(), "format", f, f == prefs.format) for f in ("mp3", "flac", "wav")]
    files_label = text(lang, "on" if prefs.files else "off")
    files = button(f"📎 {files_label}", "files", "0" if prefs.files else "1", False)
    return InlineKeyboardMarkup([models[:2], models[2:], modes[:2], modes[2:], formats, [files]])
