"""What the Discord messages look like: the status embed as a job moves, the end, refusals.

Every user-facing Discord text lives here.
"""

from __future__ import annotations

import discord

from shared.formatting import eta, megabytes
from shared.models import CATALOGUE, SIX_STEM_MODEL
from shared.schemas import JobResult, JobState, ProgressEvent, StemMode

BAR_WIDTH = 16
BLURPLE = 0x5865F2
GREEN = 0x57F287
RED = 0xED4245
GREY = 0x95A5A6

#: /stem's choices: the value a user picks -> (label, stems mode, model or None = default).
STEM_CHOICES: dict[str, tuple[str, StemMode, str | None]] = {
    "all": ("All 4 stems (vocals, drums, bass, other)", "all", None),
    "vocals": ("Vocals + instrumental (karaoke)", "vocals", None),
    "drums": ("Drums + the rest", "drums", None),
    "bass": ("Bass + the rest", "bass", None),
    "6": ("6 stems (adds guitar and piano)", "all", SIX_STEM_MODEL),
}
MODEL_CHOICES: dict[str, str] = {name: model.label for name, model in CATALOGUE.items()}
FORMAT_CHOICES: dict[str, str] = {
    "mp3": "mp3 (320 kbps)",
    "flac": "flac (lossless)",
    "wav": "wav (uncompressed)",
}

USAGE = (
    "Give me exactly one song: `/stem file:<audio file>` or `/stem url:<YouTube link>`. "
    "You can also right-click a message with an audio file or a YouTube link → "
    "Apps → **Split stems**."
)
NOTHING_IN_MESSAGE = (
    "That message has no audio file or YouTube link. Use **Split stems** on a message with "
    "an audio/video attachment or a YouTube video link."
)
NOT_YOURS = "Only the person who started this job (or a server admin) can cancel it."
ALREADY_OVER = "This job is already over: there is nothing to cancel."
CANCELLED_BY = "Cancelled by {who}."
SOMETHING_WRONG = (
    "Something went wrong on our side (reference `{reference}`). Please try again in a minute."
)


def bar(percent: float) -> str:
    filled = max(0, min(BAR_WIDTH, int(BAR_WIDTH * percent / 100)))
    return "▰" * filled + "▱" * (BAR_WIDTH - filled)


def title_line(title: str) -> str:
    return discord.utils.escape_markdown(title)[:240]


def progress_line(event: ProgressEvent) -> str:
    state = event.state
    if state == JobState.QUEUED:
        if event.position is None:
            line = "⏳ Waiting in the queue"
        elif event.position == 0:
            line = "⏳ Queued: you are next"
        else:
            ahead = event.position
            line = f"⏳ Queued: {ahead} job{'s' if ahead != 1 else ''} ahead of you"
        if event.eta_s:
            line += f" · about {eta(event.eta_s)}"
        return line
    if state == JobState.DOWNLOADING:
        return f"⬇️ Downloading… {round(event.percent or 0)}%"
    if state == JobState.DECODING:
        return "🎧 Reading the audio…"
    if state == JobState.SEPARATING:
        percent = event.percent or 0
        line = f"🎛️ Separating `{bar(percent)}` {round(percent)}%"
        if event.eta_s:
            line += f" · {eta(event.eta_s)} left"
        return line
    return "📦 Encoding the stems…"


def progress_embed(title: str, event: ProgressEvent, options: str) -> discord.Embed:
    embed = discord.Embed(title=f"🎵 {title_line(title)}", color=BLURPLE)
    embed.description = progress_line(event)
    embed.set_footer(text=options)
    return embed


def fetching_embed(title: str, options: str) -> discord.Embed:
    embed = discord.Embed(title=f"🎵 {title_line(title)}", color=BLURPLE)
    embed.description = "📥 Fetching your file…"
    embed.set_footer(text=options)
    return embed


def final_embed(title: str, event: ProgressEvent, options: str) -> discord.Embed:
    if event.state == JobState.DONE and event.result is not None:
        return done_embed(event.result, options)
    english = event.error_message or event.state.value
    cancelled = event.state == JobState.CANCELLED
    embed = discord.Embed(title=f"🎵 {title_line(title)}", color=GREY if cancelled else RED)
    embed.description = f"{'🚫' if cancelled else '❌'} {english}"
    embed.set_footer(text=options)
    return embed


def done_embed(result: JobResult, options: str) -> discord.Embed:
    expires = int(result.expires_at)
    embed = discord.Embed(title=f"🎵 {title_line(result.title)}", color=GREEN)
    links = [f"**[{s.name}]({s.url})** · {megabytes(s.size_bytes)}" for s in result.stems]
    links.append(f"**[All stems (zip)]({result.zip.url})** · {megabytes(result.zip.size_bytes)}")
    page = f"**[▶ Listen, mix and download]({result.page_url})**\n" if result.page_url else ""
    embed.description = (
        "✅ Done! Download your stems:\n"
        + page
        + "\n".join(links)
        + f"\n\nLinks expire <t:{expires}:R> (<t:{expires}:f>)."
    )
    embed.set_footer(text=options)
    return embed


def options_line(model: str, stems: str, fmt: str) -> str:
    label = {"all": "all stems", "vocals": "vocals + instrumental"}.get(stems, f"{stems} + rest")
    return f"{model} · {label} · {fmt}"


def cancel_button(request_id: str) -> discord.ui.Button[discord.ui.View]:
    """A Cancel button whose custom id names the request (see bots.discord.cancel)."""
    return discord.ui.Button(
        label="Cancel",
        style=discord.ButtonStyle.secondary,
        custom_id=f"stembot:cancel:{request_id}",
    )


def cancel_view(request_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(cancel_button(request_id))
    return view


def refusal(text: str) -> discord.Embed:
    return discord.Embed(description=f"❌ {text}", color=RED)


def missing_permissions(names: list[str]) -> str:
    listed = ", ".join(f"**{n}**" for n in names)
    return (
        f"I am missing {listed} in this channel, so I could not post your stems here. "
        "Ask a server admin to give me those permissions here, or use /stem in another channel."
    )


def not_audio(content_type: str | None) -> str:
    kind = f" (`{content_type}`)" if content_type else ""
    return (
        f"That attachment is not an audio or video file{kind}. Send an mp3, m4a, ogg, opus, "
        "flac, wav, webm or mp4 file."
    )


# --- /stemadmin and /forget (bots.discord.admin) -------------------------------------------

ADMIN_REFUSALS: dict[str, str] = {
    "not_admin": "You need the **Manage Server** permission to use /stemadmin.",
    "global": "Only the bot's owners can act on the global limits, bans and stats.",
    "in_progress": "You have songs in progress: cancel them or wait until they are done, "
    "then use /forget again.",
}
HIDDEN_SONG = "(another server or chat)"
FORGET_NOT_YOURS = "Only the person who used /forget can answer it."
FORGET_IN_PROGRESS = ADMIN_REFUSALS["in_progress"]
FORGET_QUESTION = (
    "This deletes what I keep about you: your history and the stems of the songs only you "
    "asked for. Songs someone else asked for too are kept until they expire. Bans and the "
    "admins' change log are kept."
)
_SOURCES = {"default": "the default", "global": "the global value", "scope": "this server's"}
_EMBED_TEXT = 4000


def _where(scope: str | None, global_word: str = "globally") -> str:
    return "in this server" if scope else global_word


def code_block(lines: list[str]) -> str:
    """Lines in a code block, as many as fit in an embed."""
    shown: list[str] = []
    size = 8
    for i, line in enumerate(lines):
        line = line.replace("`", "ˋ")
        if size + len(line) + 40 > _EMBED_TEXT:
            shown.append(f"… and {len(lines) - i} more")
            break
        shown.append(line)
        size += len(line) + 1
    return "```\n" + "\n".join(shown) + "\n```"


def admin_embed(title: str, description: str) -> discord.Embed:
    return discord.Embed(title=title, description=description, color=BLURPLE)


def limits_embed(scope: str | None, table: str) -> discord.Embed:
    return admin_embed(
        f"Limits {_where(scope)}",
        code_block(table.split("\n"))
        + "\nChange one: `/stemadmin set` · back to the default: `/stemadmin reset`",
    )


def limit_set(key: str, value: str, old: str, scope: str | None) -> discord.Embed:
    return admin_embed(
        "Limit changed",
        f"✅ **{key}** is now **{value}** {_where(scope)} (was {old}). "
        "It applies to new requests at once.",
    )


def limit_reset(key: str, value: str, source: str, scope: str | None) -> discord.Embed:
    return admin_embed(
        "Limit reset",
        f"✅ **{key}** is back to **{value}** {_where(scope)} ({_SOURCES[source]}).",
    )


def banned(user_id: int, scope: str | None) -> discord.Embed:
    return admin_embed("Banned", f"🚫 <@{user_id}> is banned {_where(scope, 'everywhere')}.")


def unbanned(user_id: int, scope: str | None, was: bool) -> discord.Embed:
    where = _where(scope, "everywhere")
    if was:
        return admin_embed("Unbanned", f"✅ <@{user_id}> is no longer banned {where}.")
    return admin_embed("Not banned", f"<@{user_id}> was not banned {where}.")


def queue_embed(lines: list[str]) -> discord.Embed:
    if not lines:
        return admin_embed("Queue", "Nothing is waiting or in progress.")
    return admin_embed(f"Queue: {len(lines)}", code_block(lines))


def stats_embed(days: int, scope: str | None, table: str) -> discord.Embed:
    period = f"the last {days} days" if days > 1 else "today"
    return admin_embed(f"Stats for {period} {_where(scope)} (UTC)", code_block(table.split("\n")))


def audit_embed(scope: str | None, lines: list[str]) -> discord.Embed:
    where = _where(scope, "everywhere")
    if not lines:
        return admin_embed(f"Latest changes {where}", "No changes yet.")
    return admin_embed(f"Latest changes {where}", code_block(lines))


def forget_question() -> discord.Embed:
    return admin_embed("Delete your data?", FORGET_QUESTION)


def forget_button(user_id: int, choice: str) -> discord.ui.Button[discord.ui.View]:
    """ "Delete my data" / "Keep it" (see bots.discord.admin.ForgetButton)."""
    yes = choice == "yes"
    return discord.ui.Button(
        label="Delete my data" if yes else "Keep it",
        style=discord.ButtonStyle.danger if yes else discord.ButtonStyle.secondary,
        custom_id=f"stembot:forget:{user_id}:{choice}",
    )


def forget_kept() -> discord.Embed:
    return admin_embed("Nothing deleted", "Nothing was deleted.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def forget_done(requests: int, deleted: int, kept: int) -> discord.Embed:
    return admin_embed(
        "Deleted",
        f"🗑 Done: I deleted your history ({_count(requests, 'request')}) and the stems of "
        f"{_count(deleted, 'song')} only you asked for. Kept: {_count(kept, 'song')} someone "
        "else asked for too (until they expire).",
    )
