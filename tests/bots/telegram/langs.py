"""What the tests expect in a language: the catalogue's text, which must be a translation.

Each helper returns a message as the catalogue of ``t`` has it and fails while that catalogue
still falls back to the English text (an untranslated message reads the same in both).
"""

from __future__ import annotations

from shared.i18n import ENGLISH, Texts

START = (
    "Hi! Send me a song and I'll split it into stems (vocals, drums, bass, other) with "
    "Demucs: an audio file, a voice message, a video, or a YouTube link.\n\n"
    "In a group, reply to a song with /stem, or send /stem followed by a link.\n"
    "/settings: your default model, mode, format and language. /help: more."
)


def tr(t: Texts, message: str, /, **values: object) -> str:
    """``message`` in ``t``'s language; fails until the catalogue translates it."""
    text = t._(message, **values)
    assert text != ENGLISH._(message, **values), f"no {t.lang} translation of {message!r}"
    return text


def tr_p(t: Texts, context: str, message: str, /, **values: object) -> str:
    """``message`` in the ``context``, in ``t``'s language; fails until it is translated."""
    text = t.p_(context, message, **values)
    assert text != ENGLISH.p_(context, message, **values), f"no {t.lang} {context}: {message!r}"
    return text


def tr_n(t: Texts, singular: str, plural: str, n: int, /, **values: object) -> str:
    """The plural form for ``n`` in ``t``'s language; fails until it is translated."""
    text = t.n_(singular, plural, n, **values)
    english = ENGLISH.n_(singular, plural, n, **values)
    assert text != english, f"no {t.lang} translation of {plural!r}"
    return text


def before(text: str) -> str:
    """The start of a text with ``\\0`` standing for a value: what is fixed before it."""
    return text.split("\0", 1)[0]


SETTINGS = (
    "Your defaults:\nModel: {model}\nMode: {mode}\nFormat: {format}\n"
    "Send stems as files: {files}\nLanguage: {language}\n\nTap to change."
)
AUTOMATIC = "Automatic (from Telegram)"
