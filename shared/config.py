"""Settings, read from the environment (prefix ``STEMBOT_``) and an optional ``.env`` file.

One section class per concern; :func:`get_settings` builds them all. Every field is listed in
``.env.example`` and in the README's settings table.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import keys, models

MODELS = models.MODELS  # the catalogue lives in shared.models
#: SigV4 presigned URLs are valid for at most a week.
S3_MAX_LINK_TTL_S = 7 * 24 * 3600


def _section(prefix: str = "STEMBOT_") -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


def _blank_is_unset(value: SecretStr | None) -> SecretStr | None:
    """``STEMBOT_..._TOKEN=`` (as in a copied .env) means no token, not an empty one."""
    return value if value is not None and value.get_secret_value().strip() else None


#: A bot token: never shown in reprs or logs; blank means unset.
Token = Annotated[SecretStr | None, AfterValidator(_blank_is_unset)]


class BotSettings(BaseSettings):
    """Each bot's own settings (bots/*/settings.py) read the same environment as these; the
    fields here are every bot's (bots.delivery, bots.peers)."""

    model_config = _section()

    bot_instance: str | None = Field(
        default=None,
        description="This bot process's name among the processes of its bot (its consumer "
        "in the event stream's group): unique per process; the same name after a restart "
        "picks up what it left. Unset: <host>:<pid>.",
    )
    bot_claim_after_s: float = Field(
        default=30.0,
        gt=0,
        description="Events a bot process read but has not delivered for this long, and the "
        "waiting requests whose place it showed, are taken over by another process of the "
        "same bot (one that stopped or died) (s).",
    )
    bot_place_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often each bot process reads the queue (one Redis call) to show "
        "waiting users their new place when it changed (s).",
    )


class RedisSettings(BaseSettings):
    model_config = _section()

    redis_url: str | None = Field(
        default=None,
        description="Redis URL. Unset: `stembot split`/`run` start a private redis-server.",
    )
    queue_name: str = Field(
        default=keys.SEPARATE_QUEUE, description="arq queue the separation jobs go to."
    )
    download_queue_name: str = Field(
        default=keys.DOWNLOAD_QUEUE,
        description="arq queue for YouTube downloads (network-bound, holds no GPU slot).",
    )


class SeparationSettings(BaseSettings):
    model_config = _section()

    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_repo: Path | None = Field(
        default=None,
        description="Local Demucs model folder (NAME.yaml + SIG.th), trusted as the operator's "
        "own. Unset: models pulled from the HuggingFace hub (its cache, HF_HOME).",
    )
    default_model: str = "htdemucs"
    model_revisions: dict[str, str] = Field(
        default_factory=dict,
        description="Pinned hub revisions, a JSON object of model name -> commit hash (or tag, "
        "branch). A model not listed: main, resolved to a commit by `stembot models pull`; "
        "workers load the commit pulled last.",
    )
    model_offline: bool = Field(
        default=False,
        description="Workers never download: they load only what `stembot models pull` put in "
        "the cache. Off: a model missing from the cache is pulled (verified) when first needed.",
    )
    allow_pickled_weights: bool = Field(
        default=False,
        description="Allow pickled .th weights from a download (`stembot models pull --legacy`), "
        "which run code when loaded. A local STEMBOT_MODEL_REPO the operator fills is trusted "
        "whatever this says; downloaded pickles in it are not.",
    )
    model_base_url: str = Field(
        default="https://dl.fbaipublicfiles.com/demucs/",
        description="Where `stembot models pull --legacy` downloads pickled Demucs weights from "
        "(demucs' old download site, or a mirror with its layout).",
    )
    shifts: int = Field(default=1, ge=0, le=20)
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    segment: float | None = Field(default=None, gt=0)
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="Torch intra-op threads; unset = the cores this process may use (CPU "
        "affinity and cgroup quota, not the host's count).",
    )
    cpu_runtime: Literal["torch", "onnx", "compile"] = Field(
        default="torch",
        description="CPU: what runs HTDemucs' real-valued middle (encoders, transformer, "
        "decoders) for each segment: `onnx` (exported once per model at start-up, run by ONNX "
        "Runtime in fp32), `compile` (torch.compile, minutes to compile, needs a C compiler) "
        "or `torch` (demucs' own forward). STFT, masks and normalisation stay in torch; other "
        "architectures, and any runtime that cannot be built, run `torch`.",
    )
    cpu_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="CPU, with the `torch` runtime: `bf16` runs the model's convolution stacks "
        "and transformer under torch autocast in bfloat16 (STFT, masks and normalisation stay "
        "fp32); `auto` chooses it where the CPU computes bfloat16 natively (AMX or AVX-512 "
        "BF16) and fp32 elsewhere (emulated bf16 is slower than fp32). See [Benchmark]"
        "(#benchmark) for its speed and deviation.",
    )
    cuda_batch: int = Field(
        default=4,
        ge=1,
        le=64,
        description="CUDA: overlapping segments sent through the model in one batch "
        "(on running out of GPU memory the worker retries with 1). Ignored on CPU.",
    )
    cuda_precision: Literal["fp32", "fp16", "bf16"] = Field(
        default="fp32",
        description="CUDA: fp16/bf16 run the model's convolution stacks and transformer under "
        "torch autocast (STFT, masks and normalisation stay fp32). Turn on only where "
        "`make bench` on that GPU reports an SDR deviation under 0.1 dB. Ignored on CPU.",
    )
    oom_cpu_fallback: bool = Field(
        default=True,
        description="CUDA: a separation still out of GPU memory with 1 segment per batch and "
        "a shorter segment finishes on the CPU (slower) instead of failing.",
    )
    job_memory_mb: int | None = Field(
        default=None,
        ge=64,
        description="CPU: most memory (MiB) one separation may add to the worker process, "
        "enforced with RLIMIT_DATA while it runs. Past it the separation is retried with a "
        "shorter segment, then fails with a clear message, instead of the kernel killing the "
        "worker. Unset: no cap.",
    )

    @field_validator("default_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"must be one of {', '.join(MODELS)}")
        return value

    @field_validator("model_revisions")
    @classmethod
    def _known_models(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MODELS))
        if unknown:
            raise ValueError(f"unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
        if not all(rev.strip() for rev in value.values()):
            raise ValueError("a revision may not be empty")
        return value

    @field_validator("model_base_url")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value.rstrip("/") + "/"


class LimitSettings(BaseSettings):
    model_config = _section()

    max_duration_s: int = Field(default=600, gt=0)
    max_upload_mb: float = Field(default=50, gt=0)
    job_timeout_s: int = Field(default=3600, gt=0, description="Hard limit for one job.")
    job_timeout_base_s: float = Field(
        default=120,
        gt=0,
        description="Fixed part of a separation's time limit (s): fetching, decoding, encoding.",
    )
    job_timeout_factor: float = Field(
        default=4.0,
        gt=0,
        description="Seconds a separation may take per second of audio, times the shifts and "
        "the models in the bag; added to JOB_TIMEOUT_BASE_S this scales the limit to the "
        "track (JOB_TIMEOUT_S stays the cap). Past it the job is stopped and the user told.",
    )
    job_lease_s: int = Field(
        default=60,
        ge=3,
        le=3600,
        description="A running job's claim on its queue lasts this long unless its worker "
        "renews it (every third of it): a job whose worker died (killed, crashed, host lost) "
        "runs again on another worker after at most this long.",
    )
    jobs_per_hour: int = Field(
        default=5, ge=0, le=1000, description="Songs one user can start per hour (0: no limit)."
    )
    active_jobs: int = Field(
        default=1, ge=1, le=100, description="Songs one user can have in progress at once."
    )
    mixes_per_hour: int = Field(
        default=30,
        ge=0,
        le=10000,
        description="Custom mixes of finished songs one user can ask for per hour (0: no "
        "limit); counted apart from songs: a mix is made in seconds from the kept stems.",
    )
    daily_minutes: int = Field(
        default=60,
        ge=0,
        le=100000,
        description="Minutes of audio one user can send per UTC day (0: no limit).",
    )
    queue_cap: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="Songs waiting or running, all users together; beyond it new requests are "
        'told "busy, try again in about N minutes".',
    )
    admins_exempt: bool = Field(
        default=True,
        description="Bot admins/owners skip the per-user limits and the queue cap (not bans).",
    )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class DownloadSettings(BaseSettings):
    model_config = _section()

    ytdlp_cookies_file: Path | None = Field(
        default=None, description="cookies.txt for yt-dlp, when YouTube blocks the server."
    )
    ytdlp_proxy: SecretStr | None = Field(
        default=None, description="Proxy URL for yt-dlp (may hold credentials: never logged)."
    )
    download_socket_timeout_s: float = Field(default=20, gt=0)
    download_tries: int = Field(
        default=3, ge=1, le=10, description="Attempts for a transient download failure."
    )
    download_concurrency: int = Field(default=4, ge=1, le=64)
    download_retry_backoff_s: float = Field(
        default=5,
        gt=0,
        description="First delay before a transient download failure is tried again "
        "(doubling each time); yt-dlp's own quick retries sleep a fifth of it.",
    )


class StorageSettings(BaseSettings):
    model_config = _section()

    storage_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where stems live: local (STORAGE_DIR, one host or a shared volume) or s3 "
        "(an S3-compatible bucket; links are presigned; STORAGE_DIR is then scratch and cache).",
    )
    s3_bucket: str | None = Field(default=None, description="Bucket (storage_backend s3).")
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 API endpoint the processes use (MinIO, R2, ...). Unset: AWS S3.",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint users' browsers reach, for presigned links, when the processes "
        "use an internal one (e.g. http://minio:9000). Unset: S3_ENDPOINT_URL.",
    )
    s3_region: str = Field(default="us-east-1", description="Region the links are signed for.")
    s3_access_key_id: SecretStr | None = Field(
        default=None, description="Access key. Unset: boto3's own chain (AWS_*, instance role)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key (never logged). Unset: boto3's own chain."
    )
    storage_dir: Path = Path("data/storage")
    public_url: str = "http://127.0.0.1:8080"
    signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for download links. Unset: a random key kept in "
        "STORAGE_DIR/.signing-key (mode 600) so all local processes share it.",
    )
    link_ttl_h: float = Field(default=24, gt=0)
    cleanup_interval_s: int = Field(default=600, gt=0)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _s3_complete(self) -> StorageSettings:
        if self.storage_backend == "s3":
            if not self.s3_bucket:
                raise ValueError("STEMBOT_STORAGE_BACKEND=s3 needs STEMBOT_S3_BUCKET")
            if self.signing_key is None or not self.signing_key.get_secret_value():
                # hosts share no folder for the generated key: results page links would
                # verify only on the host that signed them
                raise ValueError(
                    "STEMBOT_STORAGE_BACKEND=s3 needs STEMBOT_SIGNING_KEY (the same on every host)"
                )
            if self.link_ttl_s > S3_MAX_LINK_TTL_S:
                raise ValueError("presigned S3 links last at most 7 days: STEMBOT_LINK_TTL_H<=168")
        return self

    @property
    def link_ttl_s(self) -> int:
        return int(self.link_ttl_h * 3600)

    def signing_key_bytes(self) -> bytes:
        """The link signing key; created once per storage folder when not configured."""
        if self.signing_key is not None and self.signing_key.get_secret_value():
            return self.signing_key.get_secret_value().encode()
        path = self.storage_dir / ".signing-key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()


class WebSettings(BaseSettings):
    model_config = _section()

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description='HTTP API keys, a JSON object of key -> owner name (e.g. {"k3y...": "alice"}). '
        "Empty: no /api/stemify. Keys are never logged.",
    )


class LogSettings(BaseSettings):
    model_config = _section()

    log_level: str = "INFO"
    log_json: bool = Field(
        default=False, description="One JSON object per log line (for log collectors)."
    )


SECTIONS: tuple[type[BaseSettings], ...] = (
    RedisSettings,
    SeparationSettings,
    LimitSettings,
    DownloadSettings,
    StorageSettings,
    WebSettings,
    LogSettings,
)


def env_names() -> list[str]:
    """Every environment variable the settings read."""
    return [f"STEMBOT_{name.upper()}" for cls in SECTIONS for name in cls.model_fields]


class Settings:
    """All sections together; built by :func:`get_settings` (or directly in tests)."""

    def __init__(self, **overrides: object) -> None:
        def build(cls: type[BaseSettings]) -> BaseSettings:
            mine = {k: v for k, v in overrides.items() if k in cls.model_fields}
            return cls(**mine)  # type: ignore[arg-type]

        known = set().union(*(c.model_fields for c in SECTIONS))
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        self.redis: RedisSettings = build(RedisSettings)  # type: ignore[assignment]
        self.separation: SeparationSettings = build(SeparationSettings)  # type: ignore[assignment]
        self.limits: LimitSettings = build(LimitSettings)  # type: ignore[assignment]
        self.download: DownloadSettings = build(DownloadSettings)  # type: ignore[assignment]
        self.storage: StorageSettings = build(StorageSettings)  # type: ignore[assignment]
        self.web: WebSettings = build(WebSettings)  # type: ignore[assignment]
        self.log: LogSettings = build(LogSettings)  # type: ignore[assignment]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
