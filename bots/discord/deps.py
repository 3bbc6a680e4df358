"""What every Discord handler needs, built once by the app and kept on the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import discord
from arq.connections import ArqRedis

from bots.discord.settings import DiscordSettings
from shared.config import Settings
from shared.gate import Gate
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

    @property
    def gate(self) -> Gate:
        return Gate(self.redis, self.settings, "discord")


def deps_of(interaction: discord.Interaction) -> DiscordDeps:
    deps = getattr(interaction.client, "deps", None)
    assert isinstance(deps, DiscordDeps), "the client is not a StemBot"
    return deps
