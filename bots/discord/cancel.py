"""The Cancel button under a status message; a dynamic item, so it works after a restart."""

from __future__ import annotations

import re
from typing import Any

import discord

from bots.discord.intake import cancel
from bots.discord.render import cancel_button
from shared.i18n import ENGLISH

TEMPLATE = r"stembot:cancel:(?P<rid>[0-9a-f]{32})"


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    def __init__(self, request_id: str) -> None:
        # built from a press's custom id: its label is not shown again
        super().__init__(cancel_button(ENGLISH, request_id))
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelButton:
        return cls(match["rid"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """A press of Cancel."""
        await cancel(interaction, self.request_id)
