"""The typed job contract shared by the frontends and the worker."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from shared.errors import InvalidOption
from shared.i18n import N_
from shared.models import MODEL_SOURCES, MODELS
from shared.music import Analysis


class JobState(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    DECODING = "decoding"
    SEPARATING = "separating"
    ENCODING = "encoding"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


#: The states a request ends in, in this order (the one definition of "final").
FINAL_STATES: tuple[JobState, ...] = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class AudioFormat(StrEnum):
    MP3 = "mp3"
    FLAC = "flac"
    WAV = "wav"


#: A mix's gains in percent (JobOptions.mix_gains): a stem at 0 is left out of the mix.
MIN_GAIN, UNITY_GAIN, MAX_GAIN = 1, 100, 200

#: "all" = every stem of the model; a stem name = that stem plus the rest mixed (karaoke).
StemMode = Literal["all", "vocals", "drums", "bass", "other", "guitar", "piano"]


class JobOptions(BaseModel):
    """What the user chose (model, stems, format) plus the server's separation parameters."""

    model_config = ConfigDict(frozen=True)

    model: str = "htdemucs"
    stems: StemMode = "all"
    format: AudioFormat = AudioFormat.MP3
    shifts: int = 1
    overlap: float = 0.25
    segment: float | None = None
    #: A custom mix (shared.mixes): these stems of the model, in its order, summed into one
    #: file; None: the stems themselves (``stems`` says which).
    mix: tuple[str, ...] | None = None
    #: A custom mix's volumes: per stem of ``mix`` (aligned with it), its gain in percent
    #: (1..200); None: every stem at 100 (a mix whose gains are all 100 is stored so, so that
    #: the same mix has one key).
    mix_gains: tuple[int, ...] | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.mix_gains is not None:
            if self.mix is None or len(self.mix_gains) != len(self.mix):
                raise ValueError("mix_gains must be aligned with mix")
            if not all(MIN_GAIN <= g <= MAX_GAIN for g in self.mix_gains):
                raise ValueError(f"mix_gains must be from {MIN_GAIN} to {MAX_GAIN}")
            if all(g == UNITY_GAIN for g in self.mix_gains):
                object.__setattr__(self, "mix_gains", None)
        if self.model not in MODELS:
            raise InvalidOption(
                N_("Unknown model {model}. Choose one of: {models}."),
                model=repr(self.model),
                models=", ".join(MODELS),
            )
        if self.stems != "all" and self.stems not in MODEL_SOURCES[self.model]:
            raise InvalidOption(
                N_("The model {model} has no {stem} stem. Choose one of: {stems}."),
                model=self.model,
                stem=repr(self.stems),
                stems=", ".join(MODEL_SOURCES[self.model]),
            )

    def output_stems(self) -> list[str]:
        """Names of the files this job produces, without extension."""
        if self.mix is not None:
            return [mix_name(MODEL_SOURCES[self.model], self.mix)]
        if self.stems == "all":
            return list(MODEL_SOURCES[self.model])
        rest = "instrumental" if self.stems == "vocals" else f"no_{self.stems}"
        return [self.stems, rest]


def mix_name(sources: tuple[str, ...] | list[str], kept: tuple[str, ...]) -> str:
    """The file name (without extension) of a custom mix: what it leaves out when that is one
    stem, as the two-stem modes name it (``no_drums``, ``instrumental``), else the stems it
    holds (``mix_drums_bass``)."""
    left_out = [s for s in sources if s not in kept]
    if len(left_out) == 1:
        return "instrumental" if left_out[0] == "vocals" else f"no_{left_out[0]}"
    return "mix_" + "_".join(kept)


class Source(BaseModel):
    """Where the audio comes from. ``identity`` is what the cache key hashes."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["upload", "youtube"]
    #: sha256 of the uploaded bytes, or the YouTube video id.
    identity: str
    #: Human title: the file name without extension, or the video title.
    title: str
    #: Storage key of the uploaded bytes (kind == "upload").
    storage_key: str | None = None
    #: Canonical URL (kind == "youtube").
    url: str | None = None
    size_bytes: int | None = None
    duration_s: float | None = None


#: The options that only change what is made from the stems, not Demucs' output.
DELIVERY_OPTIONS = frozenset({"format", "stems", "mix", "mix_gains"})


def separation_key(source: Source, options: JobOptions) -> str:
    """Hash of the source identity and the options that change Demucs' output (model,
    shifts, overlap, segment): the key of a kept master (shared.masters), shared by every
    format and stems mode of one song."""
    separation = options.model_dump(mode="json", exclude=set(DELIVERY_OPTIONS))
    return _hash({"source": [source.kind, source.identity], "separation": separation})


def delivery_key(source: Source, options: JobOptions) -> str:
    """Hash of the source identity and every option: the key of a job, its result and its
    files (what :func:`separation_key` holds, plus the format and stems mode, and a custom
    mix's stems and gains: the keys of jobs without one are what they were before mixes
    existed, and those of mixes without gains what they were before gains existed)."""
    exclude: set[str] | None = None
    if options.mix is None:
        exclude = {"mix", "mix_gains"}
    elif options.mix_gains is None:
        exclude = {"mix_gains"}
    options_json = options.model_dump(mode="json", exclude=exclude)
    return _hash({"source": [source.kind, source.identity], "options": options_json})


def _hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


# --- who hears about a request, and what it holds of the user's limits ---------------------


class TelegramReply(BaseModel):
    """The status message of a Telegram request."""

    model_config = ConfigDict(frozen=True)

    frontend: Literal["telegram"] = "telegram"
    chat_id: int
    message_id: int
    user_id: int
    lang: str = "en"
    title: str
    #: send the stems as audio files under the links when they fit
    files: bool = True


class DiscordReply(BaseModel):
    """The status message of a Discord request (an interaction's original response)."""

    model_config = ConfigDict(frozen=True)

    frontend: Literal["discord"] = "discord"
    channel_id: int
    message_id: int
    user_id: int
    guild_id: int | None = None
    #: the language the requester's messages are in (shared.i18n, from interaction.locale)
    lang: str = "en"
    title: str
    #: the options line shown under the title
    options: str = ""
    #: the largest file Discord lets the bot attach there
    upload_limit: int = 10 * 1024 * 1024
    files: bool = True


class ApiReply(BaseModel):
    """An HTTP API request: its owner polls it (and the API records its final state)."""

    model_config = ConfigDict(frozen=True)

    frontend: Literal["api"] = "api"
    #: the name of the API key that made it
    owner: str


class LocalReply(BaseModel):
    """A request followed on its own stream (the CLI, the demo, tests, the bench)."""

    model_config = ConfigDict(frozen=True)

    frontend: str = "cli"


def _reply_kind(value: Any) -> str:
    frontend = value.get("frontend") if isinstance(value, dict) else getattr(value, "frontend", "")
    return frontend if frontend in ("telegram", "discord", "api") else "local"


#: Where a request's progress is shown, keyed by frontend; validated whenever it is read back.
ReplyTarget = Annotated[
    Annotated[TelegramReply, Tag("telegram")]
    | Annotated[DiscordReply, Tag("discord")]
    | Annotated[ApiReply, Tag("api")]
    | Annotated[LocalReply, Tag("local")],
    Discriminator(_reply_kind),
]


class LimitTicket(BaseModel):
    """An admitted request's hold on its user's limits (shared.gate); its final event gives
    the active slot back (shared.usage)."""

    model_config = ConfigDict(frozen=True)

    #: the platform-qualified user the limits count for
    user_id: str
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    #: the server or group whose admin overrides apply (discord:guild:N, telegram:chat:N)
    scope: str | None = None
    #: an admin the per-user limits do not hold back (bans still apply)
    exempt: bool = False
    #: minutes of audio a day in force when it was admitted (0: no limit)
    daily_minutes: int = 0


class JobRequest(BaseModel):
    """One user's request, made by a frontend. Several requests may share one job."""

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    #: "cli", "telegram", "discord", "api".
    frontend: str
    #: Platform-qualified user id, e.g. "telegram:12345".
    user_id: str
    #: Redis stream the progress events for this request go to.
    reply_to: str
    source: Source
    options: JobOptions
    #: Where the progress is shown (default: followed locally on ``reply_to``).
    reply: ReplyTarget = Field(default_factory=LocalReply)
    #: The limits it holds; None for requests that bypass the limits (the CLI, tests).
    ticket: LimitTicket | None = None
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _one_frontend(self) -> JobRequest:
        if isinstance(self.reply, LocalReply) and self.reply.frontend != self.frontend:
            if _reply_kind({"frontend": self.frontend}) != "local":
                raise ValueError(f"a {self.frontend} request needs its {self.frontend} reply")
            object.__setattr__(self, "reply", LocalReply(frontend=self.frontend))
        elif self.reply.frontend != self.frontend:
            raise ValueError(f"a {self.reply.frontend} reply on a {self.frontend} request")
        return self

    @property
    def key(self) -> str:
        """The job's key (results, files, links): see :func:`delivery_key`."""
        return delivery_key(self.source, self.options)

    @property
    def separation_key(self) -> str:
        """The key of the separation this job's stems come from (its kept master)."""
        return separation_key(self.source, self.options)


class StemFile(BaseModel):
    name: str
    filename: str
    size_bytes: int
    url: str


class JobResult(BaseModel):
    key: str
    title: str
    model: str
    stems_mode: str
    format: AudioFormat
    duration_s: float
    stems: list[StemFile]
    #: Every stem in one file; None for a custom mix (one file: a zip of it would only
    #: double what it keeps).
    zip: StemFile | None = None
    created_at: float
    expires_at: float
    #: The signed link to the results page (listen, mix, download); None in old results.
    page_url: str | None = None
    #: The song's key and tempo (shared.music); None in old results, or when the analysis failed.
    analysis: Analysis | None = None

    def valid(self, now: float | None = None, margin_s: float = 60) -> bool:
        return (now or time.time()) + margin_s < self.expires_at


class ProgressEvent(BaseModel):
    """One progress update, as published to a Redis stream (see shared.events)."""

    job_id: str
    request_ids: list[str]
    state: JobState
    #: 0-100 within the current state (downloading/separating), else None.
    percent: float | None = None
    #: 0 = next to run; None when not queued.
    position: int | None = None
    eta_s: float | None = None
    error_code: str | None = None
    #: the English text (logs, the CLI)
    error_message: str | None = None
    #: what the error's text is filled in with: each language renders it (shared.errors.render)
    error_params: dict[str, str | int | float] = Field(default_factory=dict)
    result: JobResult | None = None
    ts: float = Field(default_factory=time.time)
