"""What every Discord handler needs, built once by the app and kept on the client."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import aiohttp
import discord
from arq.connections import ArqRedis

from bots.discord.settings import DiscordSettings
from shared.config import Settings
from shared.core import Core
from shared.storage import Storage

if TYPE_CHECKING:
    from bots.delivery import Delivery
    from bots.discord.presenter import DiscordPresenter, Status


@dataclass
class DiscordDeps:
    settings: Settings
    ds: DiscordSettings
    redis: ArqRedis
    storage: Storage
    http: aiohttp.ClientSession
    presenter: DiscordPresenter
    delivery: Delivery[Status]

    @cached_property
    def core(self) -> Core:
        """The request flow (shared.core), made once for the bot's life."""
        return Core(self.redis, self.storage, self.settings)


def deps_of(interaction: discord.Interaction) -> DiscordDeps:
    deps = getattr(interaction.client, "deps", None)
    assert isinstance(deps, DiscordDeps), "the client is not a StemBot"
    return deps
