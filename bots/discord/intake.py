"""From an interaction to a job: check the request, acknowledge it, submit it, follow it.

Quick refusals (wrong options, a file that is plainly too large or not audio, a link that is
not a single YouTube video, missing channel permissions) are answered at once, privately.
Everything else is acknowledged within Discord's 3 seconds (a public deferred response) and
becomes the one status message; a refusal found later (an unreadable file, too long) replaces
it with a private message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import discord

from bots.discord import render
from bots.discord.deps import DiscordDeps, deps_of
from bots.discord.language import texts_of
from bots.discord.presenter import Status
from shared import jobs
from shared.core import MAYBE_MEDIA, Accepted, Link, Requester, Upload
from shared.errors import InternalError, NotAudio, StembotError, TooLarge
from shared.formatting import title_from_filename
from shared.i18n import Texts
from shared.intake import build_options
from shared.schemas import DiscordReply, JobOptions, LimitTicket, StemMode
from shared.youtube import find_url, find_youtube_url, parse_youtube_url

log = logging.getLogger(__name__)

CHUNK = 1 << 16
#: What the bot needs in a server channel to show the status message and the result.
NEEDED = tuple(render.PERMISSIONS)


class Refused(Exception):
    """A request answered with a private message and nothing else."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Song:
    title: str
    attachment: discord.Attachment | None = None
    url: str | None = None


@dataclass(frozen=True)
class Choice:
    model: str | None
    stems: str
    fmt: str


def song_of(t: Texts, file: discord.Attachment | None, url: str | None) -> Song:
    """The one song of a /stem call; Refused for none, both, or a plain misfit."""
    if (file is None) == (url is None or not url.strip()):
        raise Refused(render.usage(t))
    if file is not None:
        return Song(title_from_filename(file.filename), attachment=file)
    assert url is not None
    return Song(parse_youtube_url(url.strip()), url=url.strip())


def song_in_message(t: Texts, message: discord.Message) -> Song:
    """The song of a message for "Split stems": its first media attachment, else a link."""
    for attachment in message.attachments:
        kind = attachment.content_type or ""
        if not kind or kind.startswith(MAYBE_MEDIA):
            return Song(title_from_filename(attachment.filename), attachment=attachment)
    url = find_youtube_url(message.content) or find_url(message.content)
    if url is not None:
        return Song(parse_youtube_url(url), url=url)
    if message.attachments:
        raise Refused(render.not_audio(t, message.attachments[0].content_type))
    raise Refused(render.nothing_in_message(t))


def check(deps: DiscordDeps, interaction: discord.Interaction, song: Song, t: Texts) -> None:
    """Refuse by what Discord tells us, before fetching anything."""
    if interaction.guild_id is not None:
        perms = interaction.app_permissions
        missing = [name for name in NEEDED if not getattr(perms, name)]
        if missing:
            raise Refused(render.missing_permissions(t, missing))
    if (file := song.attachment) is not None:
        try:
            deps.core.precheck(file.content_type, file.size)
        except NotAudio:  # said with the type Discord gave
            raise Refused(render.not_audio(t, file.content_type)) from None


async def stem_command(
    interaction: discord.Interaction,
    file: discord.Attachment | None,
    url: str | None,
    choice: Choice,
) -> None:
    """/stem with a file or a link."""
    await _start(interaction, lambda t: song_of(t, file, url), choice)


async def split_message(interaction: discord.Interaction, message: discord.Message) -> None:
    """ "Split stems" on a message: its song, with the default options."""
    await _start(interaction, lambda t: song_in_message(t, message), Choice(None, "all", "mp3"))


async def _start(
    interaction: discord.Interaction, find: Callable[[Texts], Song], choice: Choice
) -> None:
    """Answer a song request in the user's language; on success the status message follows
    the job to its end."""
    deps = deps_of(interaction)
    t = texts_of(interaction)
    try:
        song = find(t)
        check(deps, interaction, song, t)
        stems, model = _stems_and_model(choice)
        options = build_options(deps.settings, model=model, stems=stems, fmt=choice.fmt)
    except StembotError as exc:
        await private_answer(interaction, exc.message(t))
        return
    except Refused as exc:
        await private_answer(interaction, exc.text)
        return
    requester = requester_of(deps, interaction)
    line = render.options_line(t, options.model, options.stems, options.format.value)
    deferred = False  # before the defer a refusal is only private; after, it replaces the status
    try:
        async with deps.core.admission(requester) as ticket:
            await interaction.response.defer(thinking=True)
            deferred = True
            if song.attachment is not None:
                await _show_fetching(interaction, render.fetching_embed(t, song.title, line))
            status, accepted = await _submit(deps, interaction, song, options, line, ticket, t)
    except StembotError as exc:
        if deferred:
            await replace_with_private(interaction, exc.message(t))
        else:
            await private_answer(interaction, exc.message(t))
        return
    except Exception:
        if not deferred:
            raise
        error_ = InternalError()
        log.exception("discord: submitting failed, reference %s", error_.reference)
        await replace_with_private(interaction, render.something_wrong(t, error_.reference))
        return
    deps.presenter.remember(accepted.request_id, interaction)
    await deps.delivery.follow(status, accepted.first)


async def _show_fetching(interaction: discord.Interaction, embed: discord.Embed) -> None:
    try:
        await interaction.edit_original_response(embed=embed)
    except discord.HTTPException as exc:
        if exc.status != 429:  # a 429 discord.py did not wait out (Cloudflare's)
            raise
        log.info("discord: rate limited; the status message shows the next state")


def _stems_and_model(choice: Choice) -> tuple[StemMode, str | None]:
    _, stems, model = render.STEM_CHOICES[choice.stems]
    return stems, model or choice.model


async def status_reply(
    deps: DiscordDeps, interaction: discord.Interaction, t: Texts, title: str, line: str
) -> DiscordReply:
    """Where a request's progress goes: the interaction's answer (sent already), in the
    requester's language, with what Discord lets the bot attach there."""
    message = await interaction.original_response()
    return DiscordReply(
        channel_id=message.channel.id,
        message_id=message.id,
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        lang=t.lang,
        title=title,
        options=line,
        upload_limit=interaction.filesize_limit,
        files=deps.ds.discord_attach_files,
    )


async def _submit(
    deps: DiscordDeps,
    interaction: discord.Interaction,
    song: Song,
    options: JobOptions,
    line: str,
    ticket: LimitTicket,
    t: Texts,
) -> tuple[Status, Accepted]:
    reply = await status_reply(deps, interaction, t, song.title, line)
    if song.url is not None:
        accepted = await deps.core.submit(ticket, Link(song.url), options, reply)
    else:
        assert song.attachment is not None
        limit = deps.settings.limits.max_upload_bytes
        chunks = attachment_chunks(deps.http, song.attachment, limit)
        upload = Upload(chunks, song.attachment.filename)
        accepted = await deps.core.submit(ticket, upload, options, reply)
    return Status(request_id=accepted.request_id, **dict(reply)), accepted


async def attachment_chunks(
    http: aiohttp.ClientSession, attachment: discord.Attachment, max_bytes: int
) -> AsyncIterator[bytes]:
    """The attachment's bytes from Discord's CDN, streamed (the core caps the size)."""
    async with http.get(attachment.url) as response:
        if response.status != 200:
            raise aiohttp.ClientResponseError(
                response.request_info, (), status=response.status, message=response.reason or ""
            )
        declared = response.content_length
        if declared is not None and declared > max_bytes:
            raise TooLarge(max_bytes, declared)
        async for chunk in response.content.iter_chunked(CHUNK):
            yield chunk


async def cancel(interaction: discord.Interaction, request_id: str) -> None:
    """A press of Cancel: withdraw the request, if the presser may."""
    deps = deps_of(interaction)
    t = texts_of(interaction)
    requests = await jobs.load_requests(deps.redis, [request_id])
    status = Status.of(requests[0]) if requests else None
    if status is None:
        await private_answer(interaction, t._(render.ALREADY_OVER))
        return
    if interaction.user.id != status.user_id and not is_admin(deps, interaction):
        await private_answer(interaction, t._(render.NOT_YOURS))
        return
    await interaction.response.defer()  # the status message itself shows the outcome
    if not await jobs.cancel_request(deps.redis, requests[0], storage=deps.storage):
        embed = render.refusal(t._(render.ALREADY_OVER))
        await interaction.followup.send(embed=embed, ephemeral=True)


def requester_of(deps: DiscordDeps, interaction: discord.Interaction) -> Requester:
    """Who asks, for the limits: the user, in this server's scope, maybe an admin."""
    return Requester(
        "discord",
        f"discord:{interaction.user.id}",
        scope=f"discord:guild:{interaction.guild_id}" if interaction.guild_id else None,
        admin=is_admin(deps, interaction),
    )


def is_admin(deps: DiscordDeps, interaction: discord.Interaction) -> bool:
    """A bot owner, or a member who may manage this server (as Discord resolved it for the
    interaction: the channel's permissions of the member)."""
    if interaction.user.id in deps.ds.discord_owner_ids:
        return True
    perms = interaction.permissions
    return interaction.guild_id is not None and (perms.manage_guild or perms.administrator)


async def private_answer(interaction: discord.Interaction, text: str) -> None:
    embed = render.refusal(text)
    if interaction.response.is_done():
        await interaction.followup.send(embed=embed, ephemeral=True)
    else:
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def replace_with_private(interaction: discord.Interaction, text: str) -> None:
    """The public status message goes; the reason comes privately."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException as exc:
        log.info("discord: cannot delete a status message: %s", exc)
    await interaction.followup.send(embed=render.refusal(text), ephemeral=True)
