"""The Discord bot: a discord.py client with /stem, the "Split stems" message menu, the
Cancel button and the mix menu under a done song, wired to the shared core and to progress
delivery.

:func:`run_discord` logs in, syncs the commands (to one server when
STEMBOT_DISCORD_SYNC_GUILD_ID is set, else globally) when they changed since the last sync
or when asked to (`stembot discord --sync-commands`), and stays connected to the gateway.
Discord rate-limits command syncs tightly, so a restart that changed nothing sends nothing.
The bot needs no privileged intent: slash commands and menus bring their own data.

It shards (discord.py's AutoShardedClient): the count Discord recommends, all in this process,
unless STEMBOT_DISCORD_SHARD_COUNT and this process's STEMBOT_DISCORD_SHARD_IDS say otherwise;
any process delivers any request's progress.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import aiohttp
import discord
from arq.connections import ArqRedis
from discord import app_commands

from bots.discord import admin, intake, render
from bots.discord.cancel import CancelButton
from bots.discord.deps import DiscordDeps
from bots.discord.language import Translator, p_, texts_of
from bots.discord.mixes import MixSelect
from bots.discord.presenter import discord_budget, discord_delivery
from bots.discord.redact import keep_tokens_out_of_logs
from bots.discord.settings import DiscordSettings
from shared import jobs, keys
from shared.config import Settings
from shared.errors import InternalError, ServiceUnavailable
from shared.storage import Storage

log = logging.getLogger(__name__)


#: A request that Discord asks to wait longer than this for raises discord.RateLimited instead
#: of sleeping inside discord.py, so that delivery holds the chat back (Pacer.pause) and
#: keeps its other messages moving. discord.py accepts no less than 30 s; shorter waits it
#: sleeps itself, per rate-limit bucket, before retrying.
RATE_LIMIT_WAIT_S = 30.0


def commands_key(application_id: int | None, guild_id: int | None) -> str:
    """Where the hash of the commands last synced to Discord (globally or to a server) is."""
    return keys.discord_commands(application_id, guild_id)


class DiscordStartupError(Exception):
    """The bot cannot start: no token, a rejected token, or Discord unreachable."""


def _choices(options: dict[str, str]) -> list[app_commands.Choice[str]]:
    """Choices whose labels are catalogue messages (translated at sync)."""
    return [
        app_commands.Choice(name=app_commands.locale_str(label[:100], msgid=label), value=value)
        for value, label in options.items()
    ]


STEMS = _choices({value: label for value, (label, _, _) in render.STEM_CHOICES.items()})
MODELS = _choices(render.MODEL_CHOICES)
FORMATS = _choices(render.FORMAT_CHOICES)


@app_commands.command(
    name=p_("command_name", "stem"),
    description=p_("command_description", "Split a song into stems (vocals, drums, bass…)"),
)
@app_commands.rename(
    file=p_("option_name", "file"),
    url=p_("option_name", "url"),
    stems=p_("option_name", "stems"),
    model=p_("option_name", "model"),
    format=p_("option_name", "format"),
)
@app_commands.describe(
    file=p_("option_description", "An audio or video file"),
    url=p_("option_description", "A YouTube video link"),
    stems=p_("option_description", "Which stems (default: all 4)"),
    model=p_("option_description", "Speed vs quality (default: htdemucs)"),
    format=p_("option_description", "Audio format of the stems (default: mp3)"),
)
@app_commands.choices(stems=STEMS, model=MODELS, format=FORMATS)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
@app_commands.allowed_installs(guilds=True, users=False)
async def stem_command(
    interaction: discord.Interaction,
    file: discord.Attachment | None = None,
    url: str | None = None,
    stems: app_commands.Choice[str] | None = None,
    model: app_commands.Choice[str] | None = None,
    format: app_commands.Choice[str] | None = None,
) -> None:
    """/stem: split an attached file or a YouTube video."""
    choice = intake.Choice(
        model=model.value if model else None,
        stems=stems.value if stems else "all",
        fmt=format.value if format else "mp3",
    )
    await intake.stem_command(interaction, file, url, choice)


# TRANSLATORS: a menu in Discord's Apps menu of a message: up to 32 characters
@app_commands.context_menu(name=p_("command_name", "Split stems"))
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
@app_commands.allowed_installs(guilds=True, users=False)
async def split_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Split stems on a message with an audio file or a YouTube link."""
    await intake.split_message(interaction, message)


class StemBot(discord.AutoShardedClient):
    def __init__(
        self,
        settings: Settings,
        ds: DiscordSettings,
        redis: ArqRedis,
        storage: Storage,
    ) -> None:
        keep_tokens_out_of_logs()  # discord.py logs interaction tokens at DEBUG
        intents = discord.Intents.none()
        intents.guilds = True  # not privileged: servers' upload limits and channels
        shards: dict[str, Any] = {"shard_count": ds.discord_shard_count}
        if ds.discord_shard_ids is not None:  # this process's part of the shards
            shards["shard_ids"] = ds.discord_shard_ids
        super().__init__(
            intents=intents,
            max_messages=None,
            max_ratelimit_timeout=RATE_LIMIT_WAIT_S,
            **shards,
        )
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(stem_command)
        self.tree.add_command(split_menu)
        self.tree.add_command(admin.stemadmin)
        self.tree.add_command(admin.forget_command)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.settings, self.ds, self.redis, self.storage = settings, ds, redis, storage
        token = ds.discord_token.get_secret_value() if ds.discord_token else ""
        self.budget = discord_budget(redis, ds, token) if token else None
        self.presenter, self.delivery = discord_delivery(
            redis, self, ds, settings, storage, self.budget
        )
        self._deps: DiscordDeps | None = None

    @property
    def deps(self) -> DiscordDeps:
        assert self._deps is not None, "setup_hook has not run"
        return self._deps

    async def setup_hook(self) -> None:
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600, sock_read=60))
        self._deps = DiscordDeps(
            self.settings, self.ds, self.redis, self.storage, http, self.presenter, self.delivery
        )
        self.add_dynamic_items(CancelButton, MixSelect, admin.ForgetButton)
        await self.tree.set_translator(Translator())
        await self.delivery.start()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Send the commands to Discord if they changed since the last sync (a hash of what
        was sent is kept in Redis), or when ``force``; True when they were sent."""
        guild_id = self.ds.discord_sync_guild_id
        guild = discord.Object(id=guild_id) if guild_id is not None else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        # the body CommandTree.sync sends, with the translations
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands(guild=guild)
        ]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = commands_key(self.application_id, guild_id)
        where = f"server {guild_id}" if guild_id else "global"
        if not force and await self.redis.get(key) == digest.encode():
            log.info("discord: commands unchanged since the last sync (%s)", where)
            return False
        synced = await self.tree.sync(guild=guild)
        await self.redis.set(key, digest)
        log.info("discord: %d commands synced (%s)", len(synced), where)
        return True

    async def close(self) -> None:
        await self.delivery.stop()
        if self.budget is not None:
            await self.budget.close()
        if self._deps is not None:
            await self._deps.http.close()
        await super().close()

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A handler raised: logged with a reference, and the user is told."""
        t = texts_of(interaction)
        if isinstance(getattr(error, "original", error), jobs.REDIS_DOWN):
            log.warning("discord: Redis unreachable (%s)", getattr(error, "original", error))
            embed = render.refusal(ServiceUnavailable().message(t))  # restarting: try again
        else:
            reference = InternalError().reference
            log.error("discord: a command failed, reference %s", reference, exc_info=error)
            embed = render.refusal(render.something_wrong(t, reference))
        try:
            if interaction.response.is_done():
                await interaction.followup.send(embed=embed, ephemeral=True)
            else:
                await interaction.response.send_message(embed=embed, ephemeral=True)
        except discord.HTTPException:
            pass


def token_of(ds: DiscordSettings) -> str:
    if ds.discord_token is None:
        raise DiscordStartupError("STEMBOT_DISCORD_TOKEN is not set")
    return ds.discord_token.get_secret_value()


async def run_discord(
    settings: Settings,
    redis: ArqRedis,
    storage: Storage,
    ds: DiscordSettings | None = None,
    *,
    sync_commands: bool = False,
) -> None:
    """Run the bot until cancelled; pending progress resumes on the next start.

    The commands are synced when they changed, or always with ``sync_commands``."""
    ds = ds or DiscordSettings()
    token = token_of(ds)
    bot = StemBot(settings, ds, redis, storage)
    try:
        try:
            await bot.login(token)
        except discord.LoginFailure:
            raise DiscordStartupError("Discord rejected STEMBOT_DISCORD_TOKEN") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DiscordStartupError(f"cannot reach Discord: {type(exc).__name__}") from None
        await bot.sync_commands(force=sync_commands)
        log.info("discord: logged in as %s", bot.user)
        await bot.connect(reconnect=True)
    finally:
        await bot.close()
