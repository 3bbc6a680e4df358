"""Domain errors. Each carries a stable ``code`` and the text a user should read.

Frontends turn these into platform messages in one place; the worker puts ``code`` and
``user_message`` into the failure event. User-facing wording lives here and nowhere else.
"""

from __future__ import annotations

import secrets

from shared.formatting import clock


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


class Archive(NotAudio):
    code = "archive"

    def __init__(self, detail: str | None = None) -> None:
        StembotError.__init__(
            self,
            "That's an archive (zip, rar, 7z, tar...), not an audio file. Unpack it and send "
            "me the song inside.",
            detail=detail,
        )


class ReferencesOtherFiles(NotAudio):
    """A playlist, concat script, manifest or stream description: ffmpeg would open the files
    or URLs it names (other users' uploads, the server's own files), so it is never opened."""

    code = "references_other_files"

    def __init__(self, detail: str | None = None) -> None:
        StembotError.__init__(
            self,
            "That file is a playlist or script that points to other files or links, not a song "
            "itself. Send me the audio file itself (mp3, m4a, ogg, flac, wav...).",
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
    """No samples, or only silence."""

    code = "zero_length"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That audio is empty (no sound to split). Please send a real song.", detail=detail
        )


class TooManyChannels(StembotError):
    code = "too_many_channels"

    def __init__(self, channels: int, limit: int) -> None:
        super().__init__(
            f"That file has {channels} audio channels; I can split at most {limit} "
            "(mono, stereo or surround). Export a stereo mix and send that."
        )
        self.channels = channels
        self.limit = limit


class TooLong(StembotError):
    code = "too_long"

    def __init__(self, duration_s: float, limit_s: int) -> None:
        super().__init__(
            f"That track is {clock(duration_s)} long; the limit is {clock(limit_s)}. "
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


class OutOfMemory(StembotError):
    """A separation ran out of memory on every rung of the worker's retry ladder."""

    code = "out_of_memory"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "This track needs more memory than the server has free right now, even in "
            "smaller pieces. Try a shorter track or cut, or try again later.",
            detail=detail,
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


# --- YouTube links -----------------------------------------------------------------------
# Checked before anything is downloaded (shared.youtube parses the link, worker.youtube reads
# the video's metadata). A too long video is TooLong, a too large audio stream TooLarge.

_SEND_FILE = "send the audio file instead"


class NotAUrl(StembotError):
    code = "not_a_url"

    def __init__(self) -> None:
        super().__init__(
            "That doesn't look like a link. Send a YouTube video link "
            "(youtube.com/watch?v=... or youtu.be/...) or an audio file."
        )


class UnsupportedSite(StembotError):
    code = "unsupported_site"

    def __init__(self) -> None:
        super().__init__(
            "I can only fetch songs from YouTube links. For any other site, "
            "download the audio yourself and send me the file."
        )


class UnsafeUrl(StembotError):
    code = "unsafe_url"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "I can't open that link. Send a plain https://www.youtube.com/... or "
            "https://youtu.be/... link, without a password, port or IP address in it.",
            detail=detail,
        )


class NotAVideoLink(StembotError):
    code = "not_a_video"

    def __init__(self) -> None:
        super().__init__(
            "That YouTube link doesn't lead to a video, or it is cut off. Open the video, "
            "use Share, then Copy link, and send me that link."
        )


class PlaylistLink(StembotError):
    code = "playlist_link"

    def __init__(self) -> None:
        super().__init__(
            "That's a link to a playlist or a channel, not to one video. Open the song "
            "you want and send me the link of that one video."
        )


class LiveStream(StembotError):
    code = "live_stream"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That's a live stream or a premiere that hasn't finished yet, so its length "
            "isn't known. Send the link again once the full video is up.",
            detail=detail,
        )


class PrivateVideo(StembotError):
    code = "private_video"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That video is private or only for some viewers (channel members, Premium), "
            f"so I can't get it. Ask for a public link, or {_SEND_FILE}.",
            detail=detail,
        )


class VideoUnavailable(StembotError):
    code = "video_unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That video isn't available on YouTube: it was removed, or the link is wrong. "
            f"Check the link, or {_SEND_FILE}.",
            detail=detail,
        )


class AgeRestricted(StembotError):
    code = "age_restricted"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That video is age-restricted: YouTube only plays it for signed-in adults, "
            f"so I can't get it. Please {_SEND_FILE}.",
            detail=detail,
        )


class RegionBlocked(StembotError):
    code = "region_blocked"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "That video is blocked in the country this server is in, so I can't get it. "
            f"Please {_SEND_FILE}.",
            detail=detail,
        )


class BotCheck(StembotError):
    """YouTube wants the server to sign in ("confirm you're not a bot"); operators can fix it
    with a cookies file or a proxy. Retrying at once would only make it worse."""

    code = "youtube_blocked"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "YouTube is blocking this server right now (it asks to prove we're not a bot), "
            f"so I can't get videos from it. Please {_SEND_FILE}, or try the link later.",
            detail=detail,
        )


class DownloadFailed(StembotError):
    """Network trouble or YouTube throttling: worth retrying later."""

    code = "download_failed"
    transient = True

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "I couldn't download that video from YouTube (network trouble or YouTube is "
            f"slowing us down). Please try again in a few minutes, or {_SEND_FILE}.",
            detail=detail,
        )


class YoutubeFailed(StembotError):
    """YouTube answered, but not with audio we can use (a format or site change on its side)."""

    code = "youtube_failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "YouTube didn't give me the audio of that video (something changed on its side). "
            f"Please {_SEND_FILE}, or try the link again later.",
            detail=detail,
        )


class MalformedRequest(StembotError):
    """A request body that cannot be parsed (a broken multipart body, an unknown charset): the
    client's mistake, answered 400 by the HTTP API."""

    code = "bad_request"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "The request body is malformed: send multipart/form-data with the audio in a part "
            "named 'file', or a JSON object with a YouTube 'url'.",
            detail=detail,
        )
