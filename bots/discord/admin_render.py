"""What /stemadmin and /forget answer (bots.discord.admin), in the user's language (``t``)."""

from __future__ import annotations

import discord

from bots.discord.language import command
from bots.discord.render import BLURPLE
from shared.i18n import N_, Texts

#: Why an admin command is refused (shared.admin.NotAllowed's reasons).
REFUSALS: dict[str, str] = {
    # TRANSLATORS: {stemadmin} is the command as Discord shows it in your language
    "not_admin": N_("You need the **Manage Server** permission to use {stemadmin}."),
    "global": N_("Only the bot's owners can act on the global limits, bans and stats."),
    # TRANSLATORS: {forget} is the command as Discord shows it in your language
    "in_progress": N_(
        "You have songs in progress: cancel them or wait until they are done, then use "
        "{forget} again."
    ),
}
# TRANSLATORS: stands for the title of a song asked for in another server (the queue)
HIDDEN_SONG = N_("(another server or chat)")
# TRANSLATORS: {forget} is the command as Discord shows it in your language
FORGET_NOT_YOURS = N_("Only the person who used {forget} can answer it.")
FORGET_QUESTION = N_(
    "This deletes what I keep about you: your history and the stems of the songs only you "
    "asked for. Songs someone else asked for too are kept until they expire. Bans and the "
    "admins' change log are kept."
)
_EMBED_TEXT = 4000


def refused(t: Texts, reason: str) -> str:
    """An admin command's refusal (``reason`` of shared.admin.NotAllowed)."""
    text = REFUSALS.get(reason, REFUSALS["not_admin"])
    return t._(text, stemadmin=command(t, "stemadmin"), forget=command(t, "forget"))


def forget_not_yours(t: Texts) -> str:
    return t._(FORGET_NOT_YOURS, forget=command(t, "forget"))


def this_server(t: Texts) -> str:
    """Where a server's own limits come from (the limits table)."""
    # TRANSLATORS: where a limit's value comes from, in the limits table
    return t.p_("limit source", "this server")


def _where(t: Texts, scope: str | None, everywhere: bool = False) -> str:
    """Where an admin's change applies: "in this server", "globally", "everywhere"."""
    if scope:
        # TRANSLATORS: where an admin's change applies, as in "**5** in this server"
        return t.p_("where", "in this server")
    # TRANSLATORS: where an admin's change applies, as in "banned everywhere"
    # (every server and chat)
    return t.p_("where", "everywhere") if everywhere else t.p_("where", "globally")


def code_block(t: Texts, lines: list[str]) -> str:
    """Lines in a code block, as many as fit in an embed."""
    shown: list[str] = []
    size = 8
    for i, line in enumerate(lines):
        line = line.replace("`", "ˋ")
        if size + len(line) + 40 > _EMBED_TEXT:
            shown.append(t.n_("… and {n} more", "… and {n} more", len(lines) - i))
            break
        shown.append(line)
        size += len(line) + 1
    return "```\n" + "\n".join(shown) + "\n```"


def admin_embed(title: str, description: str) -> discord.Embed:
    return discord.Embed(title=title, description=description, color=BLURPLE)


def limits_embed(t: Texts, scope: str | None, table: str) -> discord.Embed:
    return admin_embed(
        # TRANSLATORS: {where} is "in this server" or "globally"
        t._("Limits {where}", where=_where(t, scope)),
        code_block(t, table.split("\n"))
        + "\n"
        + t._(
            "Change one: `{set}` · back to the default: `{reset}`",
            set=command(t, "stemadmin", "set"),
            reset=command(t, "stemadmin", "reset"),
        ),
    )


def limit_set(t: Texts, key: str, value: str, old: str, scope: str | None) -> discord.Embed:
    return admin_embed(
        t._("Limit changed"),
        # TRANSLATORS: {key} is a limit's name, kept in English; {where} is "in this server"
        # or "globally"
        t._(
            "✅ **{key}** is now **{value}** {where} (was {old}). "
            "It applies to new requests at once.",
            key=key,
            value=value,
            where=_where(t, scope),
            old=old,
        ),
    )


def limit_reset(t: Texts, key: str, value: str, source: str, scope: str | None) -> discord.Embed:
    sources = {
        # TRANSLATORS: where a limit's value comes from, as in "back to **5** globally
        # (the default)"
        "default": t.p_("limit value", "the default"),
        "global": t.p_("limit value", "the global value"),
        "scope": t.p_("limit value", "this server's"),
    }
    return admin_embed(
        t._("Limit reset"),
        t._(
            "✅ **{key}** is back to **{value}** {where} ({source}).",
            key=key,
            value=value,
            where=_where(t, scope),
            source=sources[source],
        ),
    )


def banned(t: Texts, user_id: int, scope: str | None) -> discord.Embed:
    where, user = _where(t, scope, everywhere=True), f"<@{user_id}>"
    return admin_embed(t._("Banned"), t._("🚫 {user} is banned {where}.", user=user, where=where))


def unbanned(t: Texts, user_id: int, scope: str | None, was: bool) -> discord.Embed:
    where, user = _where(t, scope, everywhere=True), f"<@{user_id}>"
    if was:
        return admin_embed(
            t._("Unbanned"), t._("✅ {user} is no longer banned {where}.", user=user, where=where)
        )
    return admin_embed(
        t._("Not banned"), t._("{user} was not banned {where}.", user=user, where=where)
    )


def queue_embed(t: Texts, lines: list[str]) -> discord.Embed:
    if not lines:
        return admin_embed(t._("Queue"), t._("Nothing is waiting or in progress."))
    return admin_embed(t._("Queue: {n}", n=t.number(len(lines))), code_block(t, lines))


def stats_embed(t: Texts, days: int, scope: str | None, table: str) -> discord.Embed:
    where = _where(t, scope)
    if days > 1:
        title = t.n_(
            "Stats for the last {n} day {where} (UTC)",
            "Stats for the last {n} days {where} (UTC)",
            days,
            where=where,
        )
    else:
        title = t._("Stats for today {where} (UTC)", where=where)
    return admin_embed(title, code_block(t, table.split("\n")))


def audit_embed(t: Texts, scope: str | None, lines: list[str]) -> discord.Embed:
    title = t._("Latest changes {where}", where=_where(t, scope, everywhere=True))
    if not lines:
        return admin_embed(title, t._("No changes yet."))
    return admin_embed(title, code_block(t, lines))


def forget_question(t: Texts) -> discord.Embed:
    return admin_embed(t._("Delete your data?"), t._(FORGET_QUESTION))


def forget_button(t: Texts, user_id: int, choice: str) -> discord.ui.Button[discord.ui.View]:
    """ "Delete my data" / "Keep it" (see bots.discord.admin.ForgetButton)."""
    yes = choice == "yes"
    return discord.ui.Button(
        label=t.p_("button", "Delete my data") if yes else t.p_("button", "Keep it"),
        style=discord.ButtonStyle.danger if yes else discord.ButtonStyle.secondary,
        custom_id=f"stembot:forget:{user_id}:{choice}",
    )


def forget_kept(t: Texts) -> discord.Embed:
    return admin_embed(t._("Nothing deleted"), t._("Nothing was deleted."))


def forget_done(t: Texts, requests: int, deleted: int, kept: int) -> discord.Embed:
    return admin_embed(
        t._("Deleted"),
        # TRANSLATORS: {requests}, {deleted} and {kept} are "2 requests", "1 song"...
        t._(
            "🗑 Done: I deleted your history ({requests}) and the stems of {deleted} only you "
            "asked for. Kept: {kept} someone else asked for too (until they expire).",
            requests=t.n_("{n} request", "{n} requests", requests),
            deleted=t.n_("{n} song", "{n} songs", deleted),
            kept=t.n_("{n} song", "{n} songs", kept),
        ),
    )
