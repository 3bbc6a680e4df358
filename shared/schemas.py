"""The typed job contract shared by the frontends and the worker."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import MODELS
from shared.errors import InvalidOption

#: Stems each model produces, in the model's order.
MODEL_SOURCES: dict[str, tuple[str, ...]] = {
    "htdemucs": ("drums", "bass", "other", "vocals"),
    "htdemucs_ft": ("drums", "bass", "other", "vocals"),
    "htdemucs_6s": ("drums", "bass", "other", "vocals", "guitar", "piano"),
    "hdemucs_mmi": ("drums", "bass", "other", "vocals"),
    "mdx_extra_q": ("drums", "bass", "other", "vocals"),
}


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
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class AudioFormat(StrEnum):
    MP3 = "mp3"
    FLAC = "flac"
    WAV = "wav"


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

    def model_post_init(self, _context: Any) -> None:
        if self.model not in MODELS:
            raise InvalidOption(
                f"Unknown model {self.model!r}. Choose one of: {', '.join(MODELS)}."
            )
        if self.stems != "all" and self.stems not in MODEL_SOURCES[self.model]:
            raise InvalidOption(
                f"The model {self.model} has no {self.stems!r} stem. "
                f"Choose one of: {', '.join(MODEL_SOURCES[self.model])}."
            )

    def output_stems(self) -> list[str]:
        """Names of the files this job produces, without extension."""
        if self.stems == "all":
            return list(MODEL_SOURCES[self.model])
        rest = "instrumental" if self.stems == "vocals" else f"no_{self.stems}"
        return [self.stems, rest]


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


def separation_key(source: Source, options: JobOptions) -> str:
    """Hash of the source identity and every option that changes the output."""
    payload = json.dumps(
        {"source": [source.kind, source.identity], "options": options.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


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
    #: Opaque frontend data (chat id, message id...), handed back with events.
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)

    @property
    def key(self) -> str:
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
    zip: StemFile
    created_at: float
    expires_at: float
    #: The signed link to the results page (listen, mix, download); None in old results.
    page_url: str | None = None

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
    error_message: str | None = None
    result: JobResult | None = None
    ts: float = Field(default_factory=time.time)
