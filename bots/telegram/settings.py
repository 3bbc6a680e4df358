"""Settings of the Telegram bot (environment prefix ``STEMBOT_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from shared.config import BotSettings, Token

#: What the cloud Bot API (api.telegram.org) lets bots download (getFile) and upload.
CLOUD_DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024
CLOUD_UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024
#: What a local Bot API server started with ``--local`` allows instead.
LOCAL_UPLOAD_LIMIT_BYTES = 2000 * 1024 * 1024


class TelegramSettings(BotSettings):
    telegram_token: Token = Field(
        default=None,
        description="Bot token from @BotFather. Unset: the Telegram bot does not run. "
        "Never logged.",
    )
    telegram_api_url: str | None = Field(
        default=None,
        description="Base URL of your own Bot API server (e.g. http://127.0.0.1:8081). "
        "Unset: the cloud Bot API at api.telegram.org.",
    )
    telegram_local_mode: bool = Field(
        default=True,
        description="The server at STEMBOT_TELEGRAM_API_URL runs with --local and shares this "
        "machine's files: lifts Telegram's 20 MB download and 50 MB upload limits (then "
        "only STEMBOT_MAX_UPLOAD_MB applies). Ignored without STEMBOT_TELEGRAM_API_URL.",
    )
    telegram_webhook_url: str | None = Field(
        default=None,
        description="Public HTTPS URL Telegram posts updates to (webhook mode). Unset: long "
        "polling. The listener serves the path of this URL.",
    )
    telegram_webhook_listen: str = Field(
        default="127.0.0.1", description="Address the webhook listener binds to."
    )
    telegram_webhook_port: int = Field(
        default=8443, ge=1, le=65535, description="Port the webhook listener binds to."
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Telegram sends with each webhook call (1-256 of A-Z a-z 0-9 _ -). "
        "Unset: a random one per start.",
    )
    telegram_send_audio: bool = Field(
        default=True,
        description="Also send the finished stems as audio files when they fit Telegram's "
        "upload limit (users can turn it off in /settings).",
    )
    telegram_admin_ids: list[int] = Field(
        default_factory=list,
        description="Telegram user ids of the bot's admins (JSON list, e.g. [1234]): they may "
        "use /limits, /setlimit, /resetlimit, /ban, /unban, /queue, /stats and /audit "
        "everywhere, and are exempt from the per-user limits (STEMBOT_ADMINS_EXEMPT).",
    )
    telegram_edit_interval_s: float = Field(
        default=3.0,
        gt=0,
        description="Least time between two edits of one progress message (s).",
    )

    telegram_receive_updates: bool = Field(
        default=True,
        description="This process takes the bot's updates (long polling, or the webhook). "
        "Off: it only delivers progress and results, beside one that takes them (Telegram "
        "hands each bot's updates to one poller).",
    )
    telegram_sends_per_s: float = Field(
        default=25,
        gt=0,
        description="Most messages and edits the bot sends in any second, all its processes "
        "together. Telegram's limit is about 30; the margin covers what the network does to "
        "the spacing (sends granted a second apart can arrive closer together).",
    )
    telegram_chat_sends_per_s: float = Field(
        default=1,
        gt=0,
        description="Most messages and edits in any second to one private chat (after a burst "
        "of 3), all processes together.",
    )
    telegram_group_sends_per_min: float = Field(
        default=20,
        gt=0,
        description="Most messages and edits in any minute to one group, all processes "
        "together (Telegram's limit is 20).",
    )

    @field_validator("telegram_api_url", "telegram_webhook_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @property
    def local_server(self) -> bool:
        """A local Bot API server in --local mode: Telegram's file size limits are lifted."""
        return self.telegram_api_url is not None and self.telegram_local_mode

    def download_limit_bytes(self) -> int | None:
        """Telegram's own download limit, or None when a local server lifts it."""
        return None if self.local_server else CLOUD_DOWNLOAD_LIMIT_BYTES

    def upload_limit_bytes(self) -> int:
        return LOCAL_UPLOAD_LIMIT_BYTES if self.local_server else CLOUD_UPLOAD_LIMIT_BYTES
