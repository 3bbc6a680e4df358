"""What the Discord messages look like: the status embed as a job moves, the end, refusals,
in the user's language (``t``, shared.i18n; see bots.discord.language).

Every user-facing Discord text of a song request lives here (the admin commands':
bots.discord.admin_render).
"""

from __future__ import annotations

import discord

from bots.discord.language import command, menu, option
from shared import errors
from shared.i18n import N_, Texts
from shared.links import with_lang
from shared.models import CATALOGUE, MODEL_SOURCES, SIX_STEM_MODEL
from shared.music import key_label, tempo_label
from shared.schemas import JobResult, JobState, ProgressEvent, StemMode
from shared.stemnames import mix_label, stem_label

BAR_WIDTH = 16
BLURPLE = 0x5865F2
GREEN = 0x57F287
RED = 0xED4245
GREY = 0x95A5A6

#: /stem's choices: the value a user picks -> (label, stems mode, model or None = default).
STEM_CHOICES: dict[str, tuple[str, StemMode, str | None]] = {
    "all": (N_("All 4 stems (vocals, drums, bass, other)"), "all", None),
    "vocals": (N_("Vocals + instrumental (karaoke)"), "vocals", None),
    "drums": (N_("Drums + the rest"), "drums", None),
    "bass": (N_("Bass + the rest"), "bass", None),
    "6": (N_("6 stems (adds guitar and piano)"), "all", SIX_STEM_MODEL),
}
MODEL_CHOICES: dict[str, str] = {name: model.label for name, model in CATALOGUE.items()}
FORMAT_CHOICES: dict[str, str] = {
    "mp3": N_("mp3 (320 kbps)"),
    "flac": N_("flac (lossless)"),
    "wav": N_("wav (uncompressed)"),
}
#: The Discord permissions the bot needs in a channel, as the Discord client names them.
PERMISSIONS: dict[str, str] = {
    # TRANSLATORS: Discord's permission names, as Discord's own settings show them
    "view_channel": N_("View Channel"),
    "send_messages": N_("Send Messages"),
    "embed_links": N_("Embed Links"),
    "read_message_history": N_("Read Message History"),
}

# TRANSLATORS: {stem} is the /stem command, {file} and {url} its options and {split} the
# "Split stems" menu, each as Discord shows them in your language
USAGE = N_(
    "Give me exactly one song: `{stem} {file}:<audio file>` or `{stem} {url}:<YouTube link>`. "
    "You can also right-click a message with an audio file or a YouTube link → "
    "Apps → **{split}**."
)
# TRANSLATORS: {split} is the "Split stems" menu as Discord shows it in your language
NOTHING_IN_MESSAGE = N_(
    "That message has no audio file or YouTube link. Use **{split}** on a message with "
    "an audio/video attachment or a YouTube video link."
)
NOT_YOURS = N_("Only the person who started this job (or a server admin) can cancel it.")
ALREADY_OVER = N_("This job is already over: there is nothing to cancel.")
# TRANSLATORS: the menu under a done song's message (up to 150 characters): ticking stems
# makes a mix of only those, as a backing track to play along with
MIX_PLACEHOLDER = N_("Make a backing track: choose the stems to keep")
SOMETHING_WRONG = N_(
    "Something went wrong on our side (reference `{reference}`). Please try again in a minute."
)


def usage(t: Texts) -> str:
    return t._(
        USAGE,
        stem=command(t, "stem"),
        file=option(t, "file"),
        url=option(t, "url"),
        split=menu(t, "Split stems"),
    )


def nothing_in_message(t: Texts) -> str:
    return t._(NOTHING_IN_MESSAGE, split=menu(t, "Split stems"))


def something_wrong(t: Texts, reference: str) -> str:
    return t._(SOMETHING_WRONG, reference=reference)


def bar(percent: float) -> str:
    filled = max(0, min(BAR_WIDTH, int(BAR_WIDTH * percent / 100)))
    return "▰" * filled + "▱" * (BAR_WIDTH - filled)


def title_line(title: str) -> str:
    return discord.utils.escape_markdown(title)[:240]


def progress_line(t: Texts, event: ProgressEvent) -> str:
    state = event.state
    if state == JobState.QUEUED:
        if event.position is None:
            line = t._("⏳ Waiting in the queue")
        elif event.position == 0:
            line = t._("⏳ Queued: you are next")
        else:
            line = t.n_(
                "⏳ Queued: {n} job ahead of you",
                "⏳ Queued: {n} jobs ahead of you",
                event.position,
            )
        if event.eta_s:
            # TRANSLATORS: after the queue position, as in "Queued: you are next · about 1 min"
            line += " · " + t._("about {eta}", eta=t.eta(event.eta_s))
        return line
    if state == JobState.DOWNLOADING:
        return t._("⬇️ Downloading… {percent}%", percent=t.number(round(event.percent or 0)))
    if state == JobState.DECODING:
        return t._("🎧 Reading the audio…")
    if state == JobState.SEPARATING:
        percent = event.percent or 0
        line = t._(
            "🎛️ Separating `{bar}` {percent}%", bar=bar(percent), percent=t.number(round(percent))
        )
        if event.eta_s:
            # TRANSLATORS: after the progress bar, as in "Separating ▰▰▱▱ 40% · 2 min left"
            line += " · " + t._("{eta} left", eta=t.eta(event.eta_s))
        return line
    return t._("📦 Encoding the stems…")


def _embed(title: str, color: int, description: str, options: str) -> discord.Embed:
    embed = discord.Embed(title=f"🎵 {title_line(title)}", color=color, description=description)
    embed.set_footer(text=options)
    return embed


def progress_embed(t: Texts, title: str, event: ProgressEvent, options: str) -> discord.Embed:
    return _embed(title, BLURPLE, progress_line(t, event), options)


def fetching_embed(t: Texts, title: str, options: str) -> discord.Embed:
    return _embed(title, BLURPLE, t._("📥 Fetching your file…"), options)


def final_embed(t: Texts, title: str, event: ProgressEvent, options: str) -> discord.Embed:
    if event.state == JobState.DONE and event.result is not None:
        return done_embed(t, event.result, options)
    why = errors.render(t, event.error_code, event.error_params, fallback=event.error_message)
    if event.state == JobState.CANCELLED:
        return _embed(title, GREY, f"🚫 {why}", options)
    return _embed(title, RED, f"❌ {why}", options)


def done_embed(t: Texts, result: JobResult, options: str) -> discord.Embed:
    expires = int(result.expires_at)
    mix = is_mix(result)
    # TRANSLATORS: the end of a custom mix (one file of some of a song's stems)
    lines = [t._("✅ Done! Download your mix:") if mix else t._("✅ Done! Download your stems:")]
    if result.page_url:
        listen = t._("▶ Listen, mix and download")
        lines.append(f"**[{listen}]({with_lang(result.page_url, t.lang)})**")
    for s in result.stems:
        lines.append(f"**[{stem_label(t, s.name)}]({s.url})** · {t.megabytes(s.size_bytes)}")
    if result.zip is not None:  # (a mix is one file: it has none)
        zipped = t._("All stems (zip)")
        lines.append(f"**[{zipped}]({result.zip.url})** · {t.megabytes(result.zip.size_bytes)}")
    # TRANSLATORS: {relative} and {moment} are Discord timestamps that each user's Discord
    # shows in their own language: "in 7 days", "December 9, 2026 7:21 AM"
    relative, moment = f"<t:{expires}:R>", f"<t:{expires}:f>"
    expiry = t._("Links expire {relative} ({moment}).", relative=relative, moment=moment)
    title = mix_title(t, result.title, result.stems[0].name) if mix else result.title
    embed = _embed(title, GREEN, "\n".join(lines) + "\n\n" + expiry, options)
    analysis = result.analysis
    key = key_label(t, analysis.key) if analysis else None
    tempo = tempo_label(t, analysis.tempo) if analysis else None
    if key:
        # TRANSLATORS: a song's musical key, as in "Key: A minor"
        embed.add_field(name=t.p_("music", "Key"), value=key)
    if tempo:
        # TRANSLATORS: a song's tempo, as in "Tempo: 120 BPM"
        embed.add_field(name=t.p_("music", "Tempo"), value=tempo)
    return embed


def options_line(t: Texts, model: str, stems: str, fmt: str) -> str:
    """The footer under a request's title: "htdemucs · all stems · mp3"."""
    if stems == "all":
        label = t._("all stems")
    elif stems == "vocals":
        label = t._("vocals + instrumental")
    else:
        # TRANSLATORS: one stem and the rest of the song, as in "drums + rest"
        label = t._("{stem} + rest", stem=stem_label(t, stems))
    return f"{model} · {label} · {fmt}"


def is_mix(result: JobResult) -> bool:
    """A custom mix's result (one file of some of a song's stems; shared.mixes)."""
    return result.stems_mode == "mix" and len(result.stems) == 1


def mixable(result: JobResult) -> bool:
    """A song whose stems can be mixed: a separation (not a mix) of a model we know."""
    return not is_mix(result) and len(MODEL_SOURCES.get(result.model, ())) > 1


def mix_title(t: Texts, title: str, name: str) -> str:
    """A mix's title: the song's and the mix's (a file name such as ``mix_drums_bass``)."""
    return f"{title} — {stem_label(t, name)}"


def mix_options_line(t: Texts, model: str, kept: tuple[str, ...], fmt: str) -> str:
    """The footer of a mix: "htdemucs · drums + bass · mp3"."""
    return f"{model} · {mix_label(t, MODEL_SOURCES[model], kept)} · {fmt}"


def mix_select(t: Texts, key: str, model: str) -> discord.ui.Select[discord.ui.View]:
    """The menu under a done song that makes a mix of the stems ticked; its custom id names
    the song's result (see bots.discord.mixes). Every stem ticked would be the song itself."""
    sources = MODEL_SOURCES[model]
    return discord.ui.Select(
        custom_id=f"stembot:mix:{key}",
        placeholder=t._(MIX_PLACEHOLDER)[:150],
        min_values=1,
        max_values=len(sources) - 1,
        options=[
            discord.SelectOption(label=stem_label(t, name)[:100], value=name) for name in sources
        ],
    )


def cancel_button(t: Texts, request_id: str) -> discord.ui.Button[discord.ui.View]:
    """A Cancel button whose custom id names the request (see bots.discord.cancel)."""
    return discord.ui.Button(
        label=t.p_("button", "Cancel"),
        style=discord.ButtonStyle.secondary,
        custom_id=f"stembot:cancel:{request_id}",
    )


def cancel_view(t: Texts, request_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(cancel_button(t, request_id))
    return view


def player_view(t: Texts, result: JobResult) -> discord.ui.View | None:
    """A link button under a done message that opens the results page's player (None for a
    result without a page)."""
    if not result.page_url:
        return None
    view = discord.ui.View(timeout=None)
    button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
        label=t.p_("button", "Open player"),
        emoji="▶️",
        style=discord.ButtonStyle.link,
        url=with_lang(result.page_url, t.lang),
    )
    view.add_item(button)
    return view


def final_view(t: Texts, result: JobResult) -> discord.ui.View | None:
    """What goes under a done message: the player's button, and under a song (not a mix)
    the menu to make a mix of its stems. None when there is neither."""
    view = player_view(t, result) or discord.ui.View(timeout=None)
    if mixable(result):
        view.add_item(mix_select(t, result.key, result.model))
    return view if view.children else None


def refusal(text: str) -> discord.Embed:
    return discord.Embed(description=f"❌ {text}", color=RED)


def missing_permissions(t: Texts, names: list[str]) -> str:
    """The bot lacks these permissions (keys of :data:`PERMISSIONS`) in the channel."""
    listed = ", ".join(f"**{t._(PERMISSIONS[n])}**" for n in names)
    return t._(
        "I am missing {permissions} in this channel, so I could not post your stems here. "
        "Ask a server admin to give me those permissions here, or use {stem} in another channel.",
        permissions=listed,
        stem=command(t, "stem"),
    )


def not_audio(t: Texts, content_type: str | None) -> str:
    if content_type:
        return t._(
            "That attachment is not an audio or video file (`{type}`). Send an mp3, m4a, ogg, "
            "opus, flac, wav, webm or mp4 file.",
            type=content_type,
        )
    return t._(
        "That attachment is not an audio or video file. Send an mp3, m4a, ogg, opus, flac, wav, "
        "webm or mp4 file."
    )
