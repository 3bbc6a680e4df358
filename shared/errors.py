"""Domain errors. Each carries a stable ``code`` and the text a user should read.

Frontends turn these into platform messages in one place; the worker puts ``code`` and
``user_message`` into the failure event. User-facing wording lives here and nowhere else.
"""

from __future__ import annotations

import secrets


class StembotError(Exception):
    """Base class: something the user should be told about, in plain words."""

    code = "internal"
    #: True when retrying the same job later may succeed (network, throttling).
    transient = False

    def __init__(self, user_message: str, *, detail: str | None = None) -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message


# --- the request itself ------------------------------------------------------------------


class InvalidOption(StembotError):
    code = "invalid_option"


class TooLarge(StembotError):
    code = "too_large"

    def __init__(self, limit_bytes: int, size_bytes: int | None = None) -> None:
        limit_mb = limit_bytes / (1024 * 1024)
        got = f" ({size_bytes / (1024 * 1024):.1f} MB)" if size_bytes else ""
        super().__init__(
            f"That file is too large{got}. The limit is {limit_mb:g} MB: "
            "send a shorter or more compressed file."
        )
        self.limit_bytes = limit_bytes


class EmptyFile(StembotError):
    code = "empty_file"

    def __init__(self) -> None:
        super().__init__("That file is empty (0 bytes). Please send the audio file again.")


class NotAudio(StembotError):
    code = "not_audio"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That file has no audio track I can use. Send an audio or video file "
            "(mp3, m4a, ogg, opus, flac, wav, webm, mp4...).",
            detail=detail,
        )


class Unreadable(StembotError):
    code = "unreadable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "I couldn't read that file: it looks damaged or isn't a format I know. "
            "Try exporting it again as mp3 or wav.",
            detail=detail,
        )


class NoDuration(StembotError):
    code = "zero_length"

    def __init__(self) -> None:
        super().__init__("That audio is empty (no sound to split). Please send a real song.")


class TooLong(StembotError):
    code = "too_long"

    def __init__(self, duration_s: float, limit_s: int) -> None:
        super().__init__(
            f"That track is {_mmss(duration_s)} long; the limit is {_mmss(limit_s)}. "
            "Send a shorter cut of the song."
        )
        self.duration_s = duration_s
        self.limit_s = limit_s


class SourceGone(StembotError):
    code = "source_gone"

    def __init__(self) -> None:
        super().__init__("The file for this job is no longer available. Please send it again.")


# --- while working -----------------------------------------------------------------------


class Cancelled(StembotError):
    code = "cancelled"

    def __init__(self) -> None:
        super().__init__("Cancelled. Nothing was kept.")


class TimedOut(StembotError):
    code = "timed_out"

    def __init__(self) -> None:
        super().__init__("This job took too long and was stopped. Please try again later.")


class ModelUnavailable(StembotError):
    code = "model_unavailable"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model {model!r} isn't available on this server right now. Try the default model."
        )


class InternalError(StembotError):
    """An unexpected failure; the user gets a short reference to quote to the operator."""

    code = "internal"

    def __init__(self, reference: str | None = None) -> None:
        self.reference = reference or secrets.token_hex(4)
        super().__init__(
            f"Something went wrong on our side (reference {self.reference}). "
            "Please try again in a few minutes."
        )


class ServiceUnavailable(StembotError):
    code = "unavailable"
    transient = True

    def __init__(self) -> None:
        super().__init__("The service is busy or restarting. Please try again in a minute.")


def _mmss(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"
