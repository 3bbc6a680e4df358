"""What every handler needs, built once by the app and kept in ``bot_data``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from arq.connections import ArqRedis
from telegram.ext import Application, CallbackContext

from bots.delivery import Delivery
from bots.telegram.delivery import Status
from bots.telegram.messenger import Messenger
from bots.telegram.settings import TelegramSettings
from bots.telegram.store import Store
from shared.config import Settings
from shared.core import Core
from shared.models import SIX_STEM_MODEL
from shared.storage import Storage

KEY = "stembot"


@dataclass(frozen=True)
class BotDeps:
    settings: Settings
    tg: TelegramSettings
    redis: ArqRedis
    storage: Storage
    store: Store
    messenger: Messenger
    delivery: Delivery[Status]

    @classmethod
    def of(cls, context: CallbackContext[Any, Any, Any, Any]) -> BotDeps:
        return cls._from(context.bot_data)

    @classmethod
    def of_app(cls, app: Application[Any, Any, Any, Any, Any, Any]) -> BotDeps:
        return cls._from(app.bot_data)

    @classmethod
    def _from(cls, bot_data: Any) -> BotDeps:
        deps = bot_data[KEY]
        assert isinstance(deps, BotDeps)
        return deps

    @cached_property
    def core(self) -> Core:
        """The request flow (shared.core), made once for the bot's life."""
        return Core(self.redis, self.storage, self.settings)

    @property
    def four_stem_default(self) -> str:
        """The server's default model, unless that is the 6-stem one (which has its own mode)."""
        model = self.settings.separation.default_model
        return "htdemucs" if model == SIX_STEM_MODEL else model
