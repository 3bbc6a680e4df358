"""Domain errors. Each carries a stable ``code``, the values its text needs (``params``) and
that text, written once here and translated in the catalogues (shared.i18n).

Frontends render an error in the user's language with :meth:`StembotError.message` (an
exception) or :func:`render` (a code and params from a progress event); the worker puts
``code`` and ``params`` into the failure event, so each language renders the message itself.
``user_message`` is the English text (logs, the CLI). User-facing wording lives here.
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from shared.formatting import clock
from shared.i18n import ENGLISH, N_, Texts, placeholders

#: What an error's text is filled in with: plain JSON values (they travel in events).
Params = dict[str, str | int | float]


class StembotError(Exception):
    """Base class: something the user should be told about, in plain words."""

    code = "internal"
    #: True when retrying the same job later may succeed (network, throttling).
    transient = False
    #: The English text, a catalogue message id with ``{params}``.
    text: ClassVar[str] = N_("Something went wrong on our side. Please try again in a few minutes.")

    def __init__(self, *, detail: str | None = None, **params: str | int | float | None) -> None:
        self.params: Params = {k: v for k, v in params.items() if v is not None}
        super().__init__(detail or self.user_message)

    @property
    def user_message(self) -> str:
        """The text in English."""
        return self.message(ENGLISH)

    def message(self, t: Texts) -> str:
        """The text in ``t``'s language."""
        return type(self).render(t, self.params)

    @classmethod
    def render(cls, t: Texts, params: Params) -> str:
        return t._(cls.text, **params)


def _classes(base: type[StembotError]) -> list[type[StembotError]]:
    found = [base]
    for sub in base.__subclasses__():
        found.extend(_classes(sub))
    return found


def render(t: Texts, code: str | None, params: Params | None, fallback: str | None = None) -> str:
    """The text of a failure known by its ``code`` and ``params`` (a progress event's), in
    ``t``'s language; ``fallback`` (or the generic text) when the code or params do not fit."""
    wanted = "limit" if (code or "").startswith("limit_") else code
    for cls in reversed(_classes(StembotError)):  # InternalError before the base's "internal"
        if vars(cls).get("code") != wanted:
            continue
        if cls.render.__func__ is StembotError.render.__func__ and not placeholders(  # type: ignore[attr-defined]
            cls.text
        ) <= set(params or {}):
            break  # a record from before its values were kept: the English it was told
        try:
            return cls.render(t, params or {})
        except (KeyError, IndexError, ValueError, TypeError):
            break
    return fallback or t._(StembotError.text)


# --- the request itself ------------------------------------------------------------------


class InvalidOption(StembotError):
    """A value the user or an admin chose that does not exist or is out of range. ``text``
    is one of the catalogue's messages (marked with ``N_`` where it is written) with its
    values, so it is translated where shown."""

    code = "invalid_option"
    text = N_("That option does not exist. Choose another one with /settings.")

    def __init__(self, text: str | None = None, **params: str | int | float) -> None:
        self.params = {**params, **({"text": text} if text is not None else {})}
        Exception.__init__(self, self.user_message)

    @classmethod
    def render(cls, t: Texts, params: Params) -> str:
        values = dict(params)
        text = values.pop("text", cls.text)
        return t._(str(text), **values)


class TooLarge(StembotError):
    code = "too_large"
    text = N_(
        "That file is too large. The limit is {limit_mb} MB: send a shorter or more "
        "compressed file."
    )
    sized = N_(
        "That file is too large ({size_mb} MB). The limit is {limit_mb} MB: send a shorter or "
        "more compressed file."
    )

    def __init__(self, limit_bytes: int, size_bytes: int | None = None) -> None:
        mb = 1024 * 1024
        size_mb = round(size_bytes / mb, 1) if size_bytes else None
        super().__init__(limit_mb=limit_bytes / mb, size_mb=size_mb)
        self.limit_bytes = limit_bytes

    @classmethod
    def render(cls, t: Texts, params: Params) -> str:
        # the size to a tenth of a MB, the limit as set (6 significant digits)
        values = {
            k: t.number(float(v), 1) if k == "size_mb" else t.number(float(f"{float(v):.6g}"), 8)
            for k, v in params.items()
        }
        text = cls.sized if "size_mb" in values else cls.text
        return t._(text, **values)


class EmptyFile(StembotError):
    code = "empty_file"
    text = N_("That file is empty (0 bytes). Please send the audio file again.")

    def __init__(self) -> None:
        super().__init__()


class NotAudio(StembotError):
    code = "not_audio"
    text = N_(
        "That file has no audio track I can use. Send an audio or video file "
        "(mp3, m4a, ogg, opus, flac, wav, webm, mp4...)."
    )

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


class Archive(NotAudio):
    code = "archive"
    text = N_(
        "That's an archive (zip, rar, 7z, tar...), not an audio file. Unpack it and send "
        "me the song inside."
    )


class ReferencesOtherFiles(NotAudio):
    """A playlist, concat script, manifest or stream description: ffmpeg would open the files
    or URLs it names (other users' uploads, the server's own files), so it is never opened."""

    code = "references_other_files"
    text = N_(
        "That file is a playlist or script that points to other files or links, not a song "
        "itself. Send me the audio file itself (mp3, m4a, ogg, flac, wav...)."
    )


class Unreadable(StembotError):
    code = "unreadable"
    text = N_(
        "I couldn't read that file: it looks damaged or isn't a format I know. "
        "Try exporting it again as mp3 or wav."
    )

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


class NoDuration(StembotError):
    """No samples, or only silence."""

    code = "zero_length"
    text = N_("That audio is empty (no sound to split). Please send a real song.")

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


class TooManyChannels(StembotError):
    code = "too_many_channels"
    text = N_(
        "That file has {channels} audio channels; I can split at most {limit} "
        "(mono, stereo or surround). Export a stereo mix and send that."
    )

    def __init__(self, channels: int, limit: int) -> None:
        super().__init__(channels=channels, limit=limit)
        self.channels = channels
        self.limit = limit


class TooLong(StembotError):
    code = "too_long"
    text = N_(
        "That track is {duration} long; the limit is {limit}. Send a shorter cut of the song."
    )

    def __init__(self, duration_s: float, limit_s: int) -> None:
        super().__init__(duration=clock(duration_s), limit=clock(limit_s))
        self.duration_s = duration_s
        self.limit_s = limit_s


class SourceGone(StembotError):
    code = "source_gone"
    text = N_("The file for this job is no longer available. Please send it again.")

    def __init__(self) -> None:
        super().__init__()


# --- while working -----------------------------------------------------------------------


class Cancelled(StembotError):
    code = "cancelled"
    text = N_("Cancelled. Nothing was kept.")

    def __init__(self) -> None:
        super().__init__()


class TimedOut(StembotError):
    code = "timed_out"
    text = N_("This job took too long and was stopped. Please try again later.")

    def __init__(self) -> None:
        super().__init__()


class ModelUnavailable(StembotError):
    code = "model_unavailable"
    text = N_("The model {model} isn't available on this server right now. Try the default model.")

    def __init__(self, model: str) -> None:
        super().__init__(model=repr(model))


class OutOfMemory(StembotError):
    """A separation ran out of memory on every rung of the worker's retry ladder."""

    code = "out_of_memory"
    text = N_(
        "This track needs more memory than the server has free right now, even in "
        "smaller pieces. Try a shorter track or cut, or try again later."
    )

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


class InternalError(StembotError):
    """An unexpected failure; the user gets a short reference to quote to the operator."""

    code = "internal"
    text = N_(
        "Something went wrong on our side (reference {reference}). "
        "Please try again in a few minutes."
    )

    def __init__(self, reference: str | None = None) -> None:
        self.reference = reference or secrets.token_hex(4)
        super().__init__(reference=self.reference)


class ServiceUnavailable(StembotError):
    code = "unavailable"
    transient = True
    text = N_("The service is busy or restarting. Please try again in a minute.")

    def __init__(self) -> None:
        super().__init__()


# --- YouTube links -----------------------------------------------------------------------
# Checked before anything is downloaded (shared.youtube parses the link, worker.youtube reads
# the video's metadata). A too long video is TooLong, a too large audio stream TooLarge.


class _Link(StembotError):
    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


class NotAUrl(_Link):
    code = "not_a_url"
    text = N_(
        "That doesn't look like a link. Send a YouTube video link "
        "(youtube.com/watch?v=... or youtu.be/...) or an audio file."
    )


class UnsupportedSite(_Link):
    code = "unsupported_site"
    text = N_(
        "I can only fetch songs from YouTube links. For any other site, "
        "download the audio yourself and send me the file."
    )


class UnsafeUrl(_Link):
    code = "unsafe_url"
    text = N_(
        "I can't open that link. Send a plain https://www.youtube.com/... or "
        "https://youtu.be/... link, without a password, port or IP address in it."
    )


class NotAVideoLink(_Link):
    code = "not_a_video"
    text = N_(
        "That YouTube link doesn't lead to a video, or it is cut off. Open the video, "
        "use Share, then Copy link, and send me that link."
    )


class PlaylistLink(_Link):
    code = "playlist_link"
    text = N_(
        "That's a link to a playlist or a channel, not to one video. Open the song "
        "you want and send me the link of that one video."
    )


class LiveStream(_Link):
    code = "live_stream"
    text = N_(
        "That's a live stream or a premiere that hasn't finished yet, so its length "
        "isn't known. Send the link again once the full video is up."
    )


class PrivateVideo(_Link):
    code = "private_video"
    text = N_(
        "That video is private or only for some viewers (channel members, Premium), "
        "so I can't get it. Ask for a public link, or send the audio file instead."
    )


class VideoUnavailable(_Link):
    code = "video_unavailable"
    text = N_(
        "That video isn't available on YouTube: it was removed, or the link is wrong. "
        "Check the link, or send the audio file instead."
    )


class AgeRestricted(_Link):
    code = "age_restricted"
    text = N_(
        "That video is age-restricted: YouTube only plays it for signed-in adults, "
        "so I can't get it. Please send the audio file instead."
    )


class RegionBlocked(_Link):
    code = "region_blocked"
    text = N_(
        "That video is blocked in the country this server is in, so I can't get it. "
        "Please send the audio file instead."
    )


class BotCheck(_Link):
    """YouTube wants the server to sign in ("confirm you're not a bot"); operators can fix it
    with a cookies file or a proxy. Retrying at once would only make it worse."""

    code = "youtube_blocked"
    text = N_(
        "YouTube is blocking this server right now (it asks to prove we're not a bot), "
        "so I can't get videos from it. Please send the audio file instead, or try the link "
        "later."
    )


class DownloadFailed(_Link):
    """Network trouble or YouTube throttling: worth retrying later."""

    code = "download_failed"
    transient = True
    text = N_(
        "I couldn't download that video from YouTube (network trouble or YouTube is "
        "slowing us down). Please try again in a few minutes, or send the audio file instead."
    )


class YoutubeFailed(_Link):
    """YouTube answered, but not with audio we can use (a format or site change on its side)."""

    code = "youtube_failed"
    text = N_(
        "YouTube didn't give me the audio of that video (something changed on its side). "
        "Please send the audio file instead, or try the link again later."
    )


class MalformedRequest(StembotError):
    """A request body that cannot be parsed (a broken multipart body, an unknown charset): the
    client's mistake, answered 400 by the HTTP API."""

    code = "bad_request"
    text = N_(
        "The request body is malformed: send multipart/form-data with the audio in a part "
        "named 'file', or a JSON object with a YouTube 'url'."
    )

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail=detail)


# --- custom mixes (shared.mixes) ---------------------------------------------------------
# A mix is made from a finished song's kept stems; the stems chosen are InvalidOption.


class MixNotReady(StembotError):
    """The song is still queued or being separated."""

    code = "not_ready"
    text = N_("This song isn't finished yet. Ask for the mix once its stems are ready.")

    def __init__(self) -> None:
        super().__init__()


class NoStemsToMix(StembotError):
    """The song failed or was cancelled: it has no stems."""

    code = "no_stems"
    text = N_("This song has no stems to mix: it failed or was cancelled. Please send it again.")

    def __init__(self) -> None:
        super().__init__()


class MixExpired(StembotError):
    """The song's links (and its kept stems) have expired, or its stems are gone."""

    code = "expired"
    text = N_(
        "The stems of this song are no longer kept, so I can't mix them. Please send it again."
    )

    def __init__(self) -> None:
        super().__init__()
