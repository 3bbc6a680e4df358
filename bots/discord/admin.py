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
from bots.discord import admin_render as render
from bots.discord.deps import DiscordDeps, deps_of
from bots.discord.language import p_, texts_of
from bots.discord.presenter import PLATFORM
from bots.discord.render import refusal
from shared import admin
from shared.admin import Actor, NotAllowed
from shared.errors import StembotError
from shared.forget import forget
from shared.i18n import ENGLISH, Texts
from shared.limits import KEYS

Run = Callable[[DiscordDeps, Actor, Texts], Awaitable[discord.Embed]]
Scope = app_commands.Choice[str]

SCOPES = [
    app_commands.Choice(name=p_("option_choice", "this server"), value="server"),
    app_commands.Choice(name=p_("option_choice", "global (bot owners only)"), value="global"),
]
#: A limit's key stays as it is; its meaning (shared.limits.KEYS) is translated.
LIMIT_KEYS = [
    app_commands.Choice(
        name=app_commands.locale_str(f"{k}: {s.help}"[:100], msgid=s.help, prefix=f"{k}: "),
        value=k,
    )
    for k, s in KEYS.items()
]
WHICH = p_("option_description", "Which limit")
SCOPE = p_("option_description", "This server or global")

stemadmin = app_commands.Group(
    name=p_("command_name", "stemadmin"),
    description=p_(
        "command_description", "Limits, bans, queue and stats of the stem bot (server admins)"
    ),
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
    """Check the rights, run one core call, answer privately in the user's language."""
    t = texts_of(interaction)
    try:
        embed = await run(deps_of(interaction), actor_of(interaction), t)
    except NotAllowed as exc:
        embed = refusal(render.refused(t, exc.reason))
    except StembotError as exc:  # a value out of range, an unknown key...
        embed = refusal(exc.message(t))
    await interaction.response.send_message(embed=embed, ephemeral=True)


def _scope_option(description: app_commands.locale_str = SCOPE) -> Callable[[Any], Any]:
    """The ``scope`` option: its name, description and choices, for translation."""

    def decorate(func: Any) -> Any:
        func = app_commands.rename(scope=p_("option_name", "scope"))(func)
        func = app_commands.describe(scope=description)(func)
        return app_commands.choices(scope=SCOPES)(func)

    return decorate


KEY = {"key": p_("option_name", "key")}
USER = {"user": p_("option_name", "user")}


@stemadmin.command(
    name=p_("command_name", "limits"),
    description=p_("command_description", "The limits in force here, and where each comes from"),
)
@_scope_option(p_("option_description", "This server (default), or the global limits"))
async def limits_command(interaction: discord.Interaction, scope: Scope | None = None) -> None:
    """/stemadmin limits"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        view = await admin.show_limits(deps.redis, deps.settings, actor, global_=_global(scope))
        return render.limits_embed(
            t, view.scope, admin.limits_table(view, render.this_server(t), t)
        )

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "set"),
    description=p_("command_description", "Set a limit for this server (or globally)"),
)
@app_commands.rename(**KEY, value=p_("option_name", "value"))
@app_commands.describe(key=WHICH, value=p_("option_description", "The new value"))
@app_commands.choices(key=LIMIT_KEYS)
@_scope_option()
async def set_command(
    interaction: discord.Interaction,
    key: app_commands.Choice[str],
    value: int,
    scope: Scope | None = None,
) -> None:
    """/stemadmin set"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        changed = await admin.set_limit(
            deps.redis, deps.settings, actor, key.value, str(value), global_=_global(scope)
        )
        old, new = t._(changed.old.shown), t._(changed.new.shown)  # a number or "no limit"
        return render.limit_set(t, changed.key, new, old, changed.scope)

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "reset"),
    description=p_("command_description", "Back to the global value or the default"),
)
@app_commands.rename(**KEY)
@app_commands.describe(key=WHICH)
@app_commands.choices(key=LIMIT_KEYS)
@_scope_option()
async def reset_command(
    interaction: discord.Interaction, key: app_commands.Choice[str], scope: Scope | None = None
) -> None:
    """/stemadmin reset"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        changed = await admin.reset_limit(
            deps.redis, deps.settings, actor, key.value, global_=_global(scope)
        )
        new = changed.new
        return render.limit_reset(t, changed.key, t._(new.shown), new.source, changed.scope)

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "ban"),
    description=p_("command_description", "Stop a user from using the bot here (or everywhere)"),
)
@app_commands.rename(**USER, reason=p_("option_name", "reason"))
@app_commands.describe(
    user=p_("option_description", "Who"),
    reason=p_("option_description", "Why (kept in the log)"),
)
@_scope_option()
async def ban_command(
    interaction: discord.Interaction,
    user: discord.User,
    reason: str | None = None,
    scope: Scope | None = None,
) -> None:
    """/stemadmin ban"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        where = await admin.ban(
            deps.redis, actor, f"discord:{user.id}", reason or "", global_=_global(scope)
        )
        return render.banned(t, user.id, where)

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "unban"), description=p_("command_description", "Lift a ban")
)
@app_commands.rename(**USER)
@app_commands.describe(user=p_("option_description", "Who"))
@_scope_option()
async def unban_command(
    interaction: discord.Interaction, user: discord.User, scope: Scope | None = None
) -> None:
    """/stemadmin unban"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        where, was = await admin.unban(
            deps.redis, actor, f"discord:{user.id}", global_=_global(scope)
        )
        return render.unbanned(t, user.id, where, was)

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "queue"),
    description=p_("command_description", "Songs waiting or in progress"),
)
async def queue_command(interaction: discord.Interaction) -> None:
    """/stemadmin queue"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        entries = await admin.queue(deps.redis, deps.settings, actor)
        lines = [admin.queue_line(e, t._(render.HIDDEN_SONG), t) for e in entries]
        return render.queue_embed(t, lines)

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "stats"),
    description=p_("command_description", "Jobs, audio minutes and failures by day (UTC)"),
)
@app_commands.rename(days=p_("option_name", "days"))
@app_commands.describe(days=p_("option_description", "How many days back (1-90, default 7)"))
@_scope_option()
async def stats_command(
    interaction: discord.Interaction, days: int | None = None, scope: Scope | None = None
) -> None:
    """/stemadmin stats"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        admin.target(actor, global_=_global(scope))  # rights before the value
        count = admin.parse_days(days)
        where, found = await admin.day_stats(deps.redis, actor, count, global_=_global(scope))
        return render.stats_embed(t, count, where, admin.stats_table(found, t))

    await _answer(interaction, run)


@stemadmin.command(
    name=p_("command_name", "audit"),
    description=p_("command_description", "The latest admin changes"),
)
@_scope_option(p_("option_description", "This server, or every change (bot owners)"))
async def audit_command(interaction: discord.Interaction, scope: Scope | None = None) -> None:
    """/stemadmin audit"""

    async def run(deps: DiscordDeps, actor: Actor, t: Texts) -> discord.Embed:
        where, entries = await admin.audit(deps.redis, actor, global_=_global(scope))
        lines = [admin.audit_line(e, with_scope=where is None) for e in entries]
        return render.audit_embed(t, where, lines)

    await _answer(interaction, run)


# --- /forget -------------------------------------------------------------------------------


@app_commands.command(
    name=p_("command_name", "forget"),
    description=p_("command_description", "Delete what this bot keeps about you"),
)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
@app_commands.allowed_installs(guilds=True, users=False)
async def forget_command(interaction: discord.Interaction) -> None:
    """/forget: ask for confirmation, privately."""
    t = texts_of(interaction)
    view = discord.ui.View(timeout=None)
    for choice in ("yes", "no"):
        view.add_item(ForgetButton(interaction.user.id, choice, t))
    await interaction.response.send_message(
        embed=render.forget_question(t), view=view, ephemeral=True
    )


class ForgetButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"stembot:forget:(?P<uid>\d+):(?P<choice>yes|no)",
):
    """The buttons under the /forget question (they work after a restart too)."""

    def __init__(self, user_id: int, choice: str, t: Texts = ENGLISH) -> None:
        # a press rebuilds the button from its custom id: its label is not shown again
        super().__init__(render.forget_button(t, user_id, choice))
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
    t = texts_of(interaction)
    if interaction.user.id != user_id:
        embed = refusal(render.forget_not_yours(t))
        await interaction.response.send_message(embed=embed, ephemeral=True)
        return
    if choice != "yes":
        await interaction.response.edit_message(embed=render.forget_kept(t), view=None)
        return
    deps = deps_of(interaction)
    try:
        done = await forget(deps.redis, deps.storage, f"discord:{user_id}")
    except NotAllowed:
        embed = refusal(render.refused(t, "in_progress"))
    else:
        parts = [Parts(deps.redis, PLATFORM, rid, set()).key for rid in done.request_ids]
        if parts:
            await deps.redis.delete(*parts)
        embed = render.forget_done(t, len(done.requests), done.deleted_jobs, done.kept_jobs)
    await interaction.response.edit_message(embed=embed, view=None)
