"""Settings of the Discord bot (environment prefix ``STEMBOT_``)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

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
    discord_requests_per_s: float = Field(
        default=40,
        gt=0,
        description="Most progress and result writes the bot makes in any second, all its "
        "processes together. Discord's global limit is 50 requests a second; the margin covers "
        "what the network does to the spacing.",
    )
    discord_channel_sends_per_5s: float = Field(
        default=5,
        gt=0,
        description="Most progress and result writes to one channel in any 5 seconds, all "
        "processes together.",
    )
    discord_shard_count: int | None = Field(
        default=None,
        ge=1,
        description="Shards the bot runs in all (Discord requires sharding past 2,500 "
        "servers). Unset: the count Discord recommends, all shards in this process.",
    )
    discord_shard_ids: Annotated[list[int] | None, NoDecode] = Field(
        default=None,
        description="The shards this process runs, as ranges (e.g. 0-3 or 0,1,8-11) or a JSON "
        "list; needs STEMBOT_DISCORD_SHARD_COUNT. Unset: every shard.",
    )

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ranges(cls, value: object) -> object:
        """ "0-3,8" -> [0, 1, 2, 3, 8]; a JSON list or a list as it is."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            return json.loads(text)
        ids: list[int] = []
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            ids += range(int(first), int(last or first) + 1)
        return ids

    @model_validator(mode="after")
    def _shards_fit(self) -> DiscordSettings:
        ids, count = self.discord_shard_ids, self.discord_shard_count
        if ids is not None:
            if count is None:
                raise ValueError("STEMBOT_DISCORD_SHARD_IDS needs STEMBOT_DISCORD_SHARD_COUNT")
            if not ids or any(not 0 <= i < count for i in ids) or len(set(ids)) != len(ids):
                raise ValueError(f"shard ids must be distinct, each from 0 to {count - 1}")
        return self
