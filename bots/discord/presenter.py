"""Discord's side of progress delivery (see bots.delivery).

The status message is the response to the user's interaction. For its first 15 minutes the
bot edits it with the interaction's token (kept in memory only: it is a credential); after
that, after a restart, or from another process of the bot, through its own access to the
channel. At the end the embed shows the links, and the stems that fit the server's upload
limit are attached when allowed.

Every edit and post takes its turn in the bot's send budget, shared by all its processes
(shared.sendbudget): Discord's global limit and its limit per channel. Progress edits come
with their turn taken by delivery; the final's writes wait for theirs (never dropped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import secrets
from collections.abc import Hashable
from typing import Any, ClassVar

import aiohttp
import discord
from redis.asyncio import Redis

from bots import delivery
from bots.delivery import Delivery, Pacer, Parts, stream_of
from bots.discord.render import cancel_view, final_embed, final_view, progress_embed
from bots.discord.settings import DiscordSettings
from shared.config import Settings
from shared.errors import SourceGone
from shared.i18n import texts
from shared.schemas import DiscordReply, JobRequest, JobResult, JobState, ProgressEvent
from shared.sendbudget import Limit, SendBudget, bot_name
from shared.storage import Storage

log = logging.getLogger(__name__)

PLATFORM = "discord"
STREAM = stream_of(PLATFORM)
#: Stop using an interaction token this long before Discord's 15 minutes run out.
TOKEN_MARGIN = dt.timedelta(minutes=1)
#: Discord's error code for an interaction token that is no longer valid.
INVALID_WEBHOOK_TOKEN = 50027
MAX_FILES = 10
DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
#: How long to hold a chat back after a 429 that states no Retry-After.
UNSTATED_RATE_LIMIT_S = 60.0


class Status(DiscordReply, delivery.Status):
    """A Discord request's status message: the interaction's original response."""

    chat_field: ClassVar[str] = "channel_id"


class DiscordPresenter:
    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        ds: DiscordSettings,
        settings: Settings,
        storage: Storage,
        budget: SendBudget | None = None,
    ) -> None:
        self.client, self.ds, self.settings, self.storage = client, ds, settings, storage
        self.budget = budget
        self._interactions: dict[str, discord.Interaction] = {}

    def remember(self, request_id: str, interaction: discord.Interaction) -> None:
        """Edit this request's message with the interaction's token while it is valid."""
        now = discord.utils.utcnow()  # (those whose end another process showed expire here)
        self._interactions = {
            rid: known for rid, known in self._interactions.items() if known.expires_at > now
        }
        self._interactions[request_id] = interaction

    def target_of(self, request: JobRequest) -> Status | None:
        return Status.of(request) if request.frontend == PLATFORM else None

    async def progress(self, status: Status, event: ProgressEvent, shown: object) -> object:
        t = texts(status.lang)
        embed = progress_embed(t, status.title, event, status.options)
        if embed.description != shown:
            view = cancel_view(t, status.request_id)
            await self.edit(status, prepaid=True, embed=embed, view=view)
        return embed.description

    async def final(self, status: Status, event: ProgressEvent, parts: Parts) -> None:
        if "text" in parts:
            return
        t = texts(status.lang)
        embed = final_embed(t, status.title, event, status.options)
        result = event.result if event.state == JobState.DONE else None
        view = final_view(t, result) if result is not None else None
        files = await self._stem_files(status, result)
        try:
            if files and not await self._edit_with_files(status, embed, view, files):
                files = []
            if not files and not await self._edit_final(status, embed, view):
                await self._post_anew(status, embed)  # the message is gone: never lose the end
        finally:
            for file in files:
                file.close()
        await parts.mark("text")

    async def finished(self, status: Status) -> None:
        self._interactions.pop(status.request_id, None)

    def retry_after(self, exc: Exception) -> float | None:
        """Discord's wait: a long one discord.py would not sleep (RateLimited), or a 429 it
        gave up on (Cloudflare's, without Discord's body; or five in a row)."""
        if isinstance(exc, discord.RateLimited):
            return exc.retry_after
        if isinstance(exc, discord.HTTPException) and exc.status == 429:
            try:
                return max(0.0, float(exc.response.headers["Retry-After"]))
            except (KeyError, ValueError):
                return UNSTATED_RATE_LIMIT_S
        return None

    def transient(self, exc: Exception) -> bool:
        return isinstance(exc, discord.DiscordServerError | aiohttp.ClientError | TimeoutError)

    # --- writing -----------------------------------------------------------------------

    async def edit(self, status: Status, *, prepaid: bool = False, **fields: Any) -> bool:
        """Edit the status message; False when it cannot be (deleted, no access).
        ``prepaid``: its turn in the send budget was taken already."""
        if not prepaid:
            await self._turn(status.channel_id)
        interaction = self._interactions.get(status.request_id)
        if (
            interaction is not None
            and discord.utils.utcnow() < interaction.expires_at - TOKEN_MARGIN
        ):
            try:
                await interaction.edit_original_response(**fields)
                return True
            except discord.NotFound:
                return False
            except discord.HTTPException as exc:
                if exc.status != 401 and exc.code != INVALID_WEBHOOK_TOKEN:
                    raise
                log.info("discord: interaction token of %s expired early", status.request_id)
        self._interactions.pop(status.request_id, None)
        message = self.client.get_partial_messageable(status.channel_id).get_partial_message(
            status.message_id
        )
        try:
            await message.edit(**fields)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("discord: cannot edit the status message of %s: %s", status.request_id, exc)
            return False
        return True

    async def _edit_final(
        self,
        status: Status,
        embed: discord.Embed,
        view: discord.ui.View | None,
        files: list[discord.File] | None = None,
    ) -> bool:
        """Show the end on the status message; False when it is gone. A player button Discord
        refuses (400: a page URL it does not take) is left off, with the mix menu: the end
        matters more."""
        extra: dict[str, Any] = {"attachments": files} if files else {}
        try:
            return await self.edit(status, embed=embed, view=view, **extra)
        except discord.HTTPException as exc:
            if view is None or exc.status != 400:
                raise
            log.info("discord: the player button of %s was refused: %s", status.request_id, exc)
            for file in files or []:
                file.reset()
            return await self.edit(status, embed=embed, view=None, **extra)

    async def _edit_with_files(
        self,
        status: Status,
        embed: discord.Embed,
        view: discord.ui.View | None,
        files: list[discord.File],
    ) -> bool:
        try:
            return await self._edit_final(status, embed, view, files)
        except discord.HTTPException as exc:
            if exc.status != 413 and exc.code != 40005:  # request entity too large
                raise
            log.info("discord: stems too large to attach for %s", status.request_id)
            for file in files:
                file.reset()
            return False

    async def _post_anew(self, status: Status, embed: discord.Embed) -> None:
        await self._turn(status.channel_id)
        channel = self.client.get_partial_messageable(status.channel_id)
        try:
            await channel.send(
                content=f"<@{status.user_id}>",
                embed=embed,
                allowed_mentions=discord.AllowedMentions(users=True),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("discord: cannot post the result of %s: %s", status.request_id, exc)

    async def _turn(self, channel_id: int) -> None:
        """Wait for a write's turn in the send budget (an urgent one: never dropped)."""
        if self.budget is not None:
            await self.budget.take(channel_id, urgent=True)

    async def _stem_files(self, status: Status, result: JobResult | None) -> list[discord.File]:
        """The stems to attach: as many as fit the server's upload limit together."""
        if result is None or not (self.ds.discord_attach_files and status.files):
            return []
        chosen, total = [], 0
        for stem in result.stems[:MAX_FILES]:
            if total + stem.size_bytes <= status.upload_limit:
                chosen.append(stem)
                total += stem.size_bytes
        if len(chosen) < len(result.stems):
            return []  # all or none: a partial set confuses more than it helps
        files = []
        tmp_dir = self.settings.storage.storage_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        title = "".join(c if c.isprintable() and c not in '/\\"' else "_" for c in result.title)
        for stem in chosen:
            tmp = tmp_dir / f"discord-{secrets.token_hex(6)}"
            try:
                await self.storage.fetch_job_file(result.key, stem.filename, tmp)
                data = await asyncio.to_thread(tmp.read_bytes)
            except SourceGone:
                return []  # expired meanwhile: the links say so too
            finally:
                await asyncio.to_thread(tmp.unlink, True)
            ext = stem.filename.rsplit(".", 1)[-1]
            files.append(discord.File(io.BytesIO(data), filename=f"{title} - {stem.name}.{ext}"))
        return files


def discord_budget(redis: Redis, ds: DiscordSettings, token: str) -> SendBudget:
    """The bot's send budget: Discord's global limit and its limit per channel."""
    channel = Limit(ds.discord_channel_sends_per_5s, 5.0)

    def channel_limit(_: Hashable) -> Limit:
        return channel

    return SendBudget(
        redis,
        PLATFORM,
        bot_name(PLATFORM, token),
        bot_limit=Limit(ds.discord_requests_per_s, 1.0),
        chat_limit=channel_limit,
    )


def discord_delivery(
    redis: Redis,
    client: discord.Client,
    ds: DiscordSettings,
    settings: Settings,
    storage: Storage,
    budget: SendBudget | None,
) -> tuple[DiscordPresenter, Delivery[Status]]:
    """The presenter (interactions are remembered there) and the delivery engine."""
    presenter = DiscordPresenter(client, ds, settings, storage, budget)
    queues = (settings.redis.queue_name, settings.redis.download_queue_name)
    engine = Delivery(
        redis,
        presenter,
        Pacer(ds.discord_edit_interval_s),
        budget=budget,
        name=ds.bot_instance,
        queues=queues,
        place_interval_s=ds.bot_place_interval_s,
        claim_after_s=ds.bot_claim_after_s,
    )
    return presenter, engine
