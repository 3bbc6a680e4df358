"""Settings of the Discord bot (environment prefix ``STEMBOT_``)."""

from __future__ import annotations

from pydantic import Field

from shared.config import BotSettings, Token


class DiscordSettings(BotSettings):
    discord_token: Token = Field(
        default=None,
        description="Bot token from the Discord developer portal (Bot tab). Unset: the Discord "
        "bot does not run. Never logged.",
    )
    discord_sync_guild_id: int | None = Field(
        default=None,
        description="Sync the slash commands to this one server at start-up (instant; for "
        "testing). Unset: sync globally (Discord may take up to an hour to show changes).",
    )
    discord_owner_ids: list[int] = Field(
        default_factory=list,
        description="Discord user ids of the bot's owners (JSON list, e.g. [1234]): they may "
        "cancel anyone's job, use /stemadmin in any server and set the global limits; they are "
        "exempt from the per-user limits (STEMBOT_ADMINS_EXEMPT). Server members with Manage "
        "Server may cancel and use /stemadmin in their server.",
    )
    discord_attach_files: bool = Field(
        default=True,
        description="Also attach the finished stems to the message when they fit the server's "
        "upload limit (10 MiB unless boosted).",
    )
    discord_edit_interval_s: float = Field(
        default=2.0, gt=0, description="Least time between two edits of one progress message (s)."
    )
