"""Custom mixes from the menu under a done song (shared.mixes, through the core).

The final message of a separated song carries a select menu of its model's stems
(bots.discord.render.mix_select): the stems ticked are summed into one file, a backing track.
The menu is a dynamic item, so it works after a restart: its custom id names the song's
result. A mix is a request of whoever chose (their limits, their language): it gets a status
message of its own, which the delivery edits from "queued" to the mix's link (and file) like
any song's. Every refusal (the song not done, its stems no longer kept, a limit, a ban) is
said privately to the chooser, and nothing stays posted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import discord

from bots.discord import render
from bots.discord.deps import deps_of
from bots.discord.intake import private_answer, replace_with_private, requester_of, status_reply
from bots.discord.language import texts_of
from bots.discord.presenter import Status
from shared import jobs, mixes
from shared.errors import InternalError, ServiceUnavailable, StembotError
from shared.i18n import ENGLISH
from shared.models import MODEL_SOURCES
from shared.schemas import mix_name

log = logging.getLogger(__name__)

TEMPLATE = r"stembot:mix:(?P<key>[0-9a-f]{32})"


class MixSelect(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=TEMPLATE):
    def __init__(self, key: str) -> None:
        # built from a choice's custom id: the choice's values come with the interaction
        select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
            custom_id=f"stembot:mix:{key}", placeholder=ENGLISH._(render.MIX_PLACEHOLDER)
        )
        super().__init__(select)
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> MixSelect:
        return cls(match["key"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """A choice of stems in the menu."""
        await make_mix(interaction, self.key, self.item.values)


async def make_mix(interaction: discord.Interaction, key: str, values: Sequence[str]) -> None:
    """Make the mix of the stems chosen of the song whose result is ``key``: its own status
    message, followed to its link; a refusal is said to the chooser only. Either way the
    menu is cleared for the next choice."""
    try:
        await _make_mix(interaction, key, values)
    finally:
        await _clear_menu(interaction)


async def _clear_menu(interaction: discord.Interaction) -> None:
    """Show the song's menu unchosen again: Discord keeps showing the stems last chosen, and
    sends no interaction for the same choice made again (after a refusal, say). The song's
    components are sent back as they are, which resets them."""
    message = interaction.message
    if message is None:
        return
    try:
        await message.edit(view=discord.ui.View.from_message(message, timeout=None))
    except discord.HTTPException as exc:  # the menu stays as it is shown: no harm
        log.info("discord: cannot clear the mix menu of message %s (%s)", message.id, exc)


async def _make_mix(interaction: discord.Interaction, key: str, values: Sequence[str]) -> None:
    deps = deps_of(interaction)
    t = texts_of(interaction)
    try:
        song, result = await mixes.song_of(deps.redis, key)
        model = song.options.model
        stems = mixes.check_stems(model, values)
    except StembotError as exc:
        await private_answer(interaction, exc.message(t))
        return
    title = render.mix_title(t, result.title, mix_name(MODEL_SOURCES[model], stems))
    line = render.mix_options_line(t, model, stems, song.options.format.value)
    # a public "thinking…" answer: the mix's status message (a refusal replaces it privately)
    await interaction.response.defer(thinking=True)
    try:
        reply = await status_reply(deps, interaction, t, title, line)
        try:
            requester = requester_of(deps, interaction)
            accepted = await deps.core.mix(requester, song, stems, None, reply)
        except jobs.REDIS_DOWN as exc:
            raise ServiceUnavailable() from exc
    except StembotError as exc:
        await replace_with_private(interaction, exc.message(t))
        return
    except Exception:
        error_ = InternalError()
        log.exception("discord: a mix failed, reference %s", error_.reference)
        await replace_with_private(interaction, render.something_wrong(t, error_.reference))
        return
    deps.presenter.remember(accepted.request_id, interaction)
    status = Status(request_id=accepted.request_id, **dict(reply))
    await deps.delivery.follow(status, accepted.first)
