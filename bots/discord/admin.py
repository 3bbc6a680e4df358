"""/stemadmin (server admins, the bot's owners) and /forget (everyone) on Discord.

/stemadmin is a guild-only group that Discord shows to members with Manage Server
(``default_member_permissions``); a server can change that in its integration settings, so
each use is checked again here from the permissions Discord sends with the interaction.
The bot's owners (STEMBOT_DISCORD_OWNER_IDS) may use it in any server and act on the global
limits, bans and stats with ``scope: global``. Every answer is private (ephemeral).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bots.delivery import Parts
from bots.discord import render
from bots.discord.deps import DiscordDeps, deps_of
from bots.discord.presenter import PLATFORM
from shared import admin
from shared.admin import Actor, NotAllowed
from shared.errors import StembotError
from shared.forget import forget
from shared.limits import KEYS

Run = Callable[[DiscordDeps, Actor], Awaitable[discord.Embed]]
Scope = app_commands.Choice[str]

SCOPES = [
    app_commands.Choice(name="this server", value="server"),
    app_commands.Choice(name="global (bot owners only)", value="global"),
]
LIMIT_KEYS = [app_commands.Choice(name=f"{k}: {s.help}"[:100], value=k) for k, s in KEYS.items()]

stemadmin = app_commands.Group(
    name="stemadmin",
    description="Limits, bans, queue and stats of the stem bot (server admins)",
    guild_only=True,
    allowed_contexts=app_commands.AppCommandContext(guild=True),
    allowed_installs=app_commands.AppInstallationType(guild=True),
    default_permissions=discord.Permissions(manage_guild=True),
)


def actor_of(interaction: discord.Interaction) -> Actor:
    """The user's rights, from what Discord resolved for this interaction."""
    deps = deps_of(interaction)
    user_id = interaction.user.id
    owner = user_id in deps.ds.discord_owner_ids
    if interaction.guild_id is None:
        return Actor(f"discord:{user_id}", None, bot_admin=owner)
    perms = interaction.permissions
    manager = perms.manage_guild or perms.administrator
    scope = f"discord:guild:{interaction.guild_id}"
    return Actor(f"discord:{user_id}", scope, scope_admin=manager, bot_admin=owner)


def _global(scope: Scope | None) -> bool:
    return scope is not None and scope.value == "global"


async def _answer(interaction: discord.Interaction, run: Run) -> None:
    """Check the rights, run one core call, answer privately."""
    try:
        embed = await run(deps_of(interaction), actor_of(interaction))
    except NotAllowed as exc:
        embed = render.refusal(render.ADMIN_REFUSALS[exc.reason])
    except StembotError as exc:  # a value out of range, an unknown key...
        embed = render.refusal(exc.user_message)
    await interaction.response.send_message(embed=embed, ephemeral=True)


@stemadmin.command(name="limits", description="The limits in force here, and where each comes from")
@app_commands.describe(scope="This server (default), or the global limits")
@app_commands.choices(scope=SCOPES)
async def limits_command(interaction: discord.Interaction, scope: Scope | None = None) -> None:
    """/stemadmin limits"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        view = await admin.show_limits(deps.redis, deps.settings, actor, global_=_global(scope))
        return render.limits_embed(view.scope, admin.limits_table(view, "this server"))

    await _answer(interaction, run)


@stemadmin.command(name="set", description="Set a limit for this server (or globally)")
@app_commands.describe(key="Which limit", value="The new value", scope="This server or global")
@app_commands.choices(key=LIMIT_KEYS, scope=SCOPES)
async def set_command(
    interaction: discord.Interaction,
    key: app_commands.Choice[str],
    value: int,
    scope: Scope | None = None,
) -> None:
    """/stemadmin set"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        changed = await admin.set_limit(
            deps.redis, deps.settings, actor, key.value, str(value), global_=_global(scope)
        )
        return render.limit_set(changed.key, changed.new.shown, changed.old.shown, changed.scope)

    await _answer(interaction, run)


@stemadmin.command(name="reset", description="Back to the global value or the default")
@app_commands.describe(key="Which limit", scope="This server or global")
@app_commands.choices(key=LIMIT_KEYS, scope=SCOPES)
async def reset_command(
    interaction: discord.Interaction, key: app_commands.Choice[str], scope: Scope | None = None
) -> None:
    """/stemadmin reset"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        changed = await admin.reset_limit(
            deps.redis, deps.settings, actor, key.value, global_=_global(scope)
        )
        new = changed.new
        return render.limit_reset(changed.key, new.shown, new.source, changed.scope)

    await _answer(interaction, run)


@stemadmin.command(name="ban", description="Stop a user from using the bot here (or everywhere)")
@app_commands.describe(user="Who", reason="Why (kept in the log)", scope="This server or global")
@app_commands.choices(scope=SCOPES)
async def ban_command(
    interaction: discord.Interaction,
    user: discord.User,
    reason: str | None = None,
    scope: Scope | None = None,
) -> None:
    """/stemadmin ban"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        where = await admin.ban(
            deps.redis, actor, f"discord:{user.id}", reason or "", global_=_global(scope)
        )
        return render.banned(user.id, where)

    await _answer(interaction, run)


@stemadmin.command(name="unban", description="Lift a ban")
@app_commands.describe(user="Who", scope="This server or global")
@app_commands.choices(scope=SCOPES)
async def unban_command(
    interaction: discord.Interaction, user: discord.User, scope: Scope | None = None
) -> None:
    """/stemadmin unban"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        where, was = await admin.unban(
            deps.redis, actor, f"discord:{user.id}", global_=_global(scope)
        )
        return render.unbanned(user.id, where, was)

    await _answer(interaction, run)


@stemadmin.command(name="queue", description="Songs waiting or in progress")
async def queue_command(interaction: discord.Interaction) -> None:
    """/stemadmin queue"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        entries = await admin.queue(deps.redis, deps.settings, actor)
        lines = [admin.queue_line(e, render.HIDDEN_SONG) for e in entries]
        return render.queue_embed(lines)

    await _answer(interaction, run)


@stemadmin.command(name="stats", description="Jobs, audio minutes and failures by day (UTC)")
@app_commands.describe(days="How many days back (1-90, default 7)", scope="This server or global")
@app_commands.choices(scope=SCOPES)
async def stats_command(
    interaction: discord.Interaction, days: int | None = None, scope: Scope | None = None
) -> None:
    """/stemadmin stats"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        admin.target(actor, global_=_global(scope))  # rights before the value
        count = admin.parse_days(days)
        where, found = await admin.day_stats(deps.redis, actor, count, global_=_global(scope))
        return render.stats_embed(count, where, admin.stats_table(found))

    await _answer(interaction, run)


@stemadmin.command(name="audit", description="The latest admin changes")
@app_commands.describe(scope="This server, or every change (bot owners)")
@app_commands.choices(scope=SCOPES)
async def audit_command(interaction: discord.Interaction, scope: Scope | None = None) -> None:
    """/stemadmin audit"""

    async def run(deps: DiscordDeps, actor: Actor) -> discord.Embed:
        where, entries = await admin.audit(deps.redis, actor, global_=_global(scope))
        lines = [admin.audit_line(e, with_scope=where is None) for e in entries]
        return render.audit_embed(where, lines)

    await _answer(interaction, run)


# --- /forget -------------------------------------------------------------------------------


@app_commands.command(name="forget", description="Delete what this bot keeps about you")
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
@app_commands.allowed_installs(guilds=True, users=False)
async def forget_command(interaction: discord.Interaction) -> None:
    """/forget: ask for confirmation, privately."""
    view = discord.ui.View(timeout=None)
    for choice in ("yes", "no"):
        view.add_item(ForgetButton(interaction.user.id, choice))
    await interaction.response.send_message(
        embed=render.forget_question(), view=view, ephemeral=True
    )


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"stembot:forget:(?P<uid>\d+):(?P<choice>yes|no)",
):
    """The buttons under the /forget question (they work after a restart too)."""

    def __init__(self, user_id: int, choice: str) -> None:
        super().__init__(render.forget_button(user_id, choice))
        self.user_id, self.choice = user_id, choice

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ForgetButton:
        return cls(int(match["uid"]), match["choice"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """A press of "Delete my data" or "Keep it"."""
        await forget_pressed(interaction, self.user_id, self.choice)


async def forget_pressed(interaction: discord.Interaction, user_id: int, choice: str) -> None:
    if interaction.user.id != user_id:
        embed = render.refusal(render.FORGET_NOT_YOURS)
        await interaction.response.send_message(embed=embed, ephemeral=True)
        return
    if choice != "yes":
        await interaction.response.edit_message(embed=render.forget_kept(), view=None)
        return
    deps = deps_of(interaction)
    try:
        done = await forget(deps.redis, deps.storage, f"discord:{user_id}")
    except NotAllowed:
        embed = render.refusal(render.FORGET_IN_PROGRESS)
    else:
        parts = [Parts(deps.redis, PLATFORM, rid, set()).key for rid in done.request_ids]
        if parts:
            await deps.redis.delete(*parts)
        embed = render.forget_done(len(done.requests), done.deleted_jobs, done.kept_jobs)
    await interaction.response.edit_message(embed=embed, view=None)
