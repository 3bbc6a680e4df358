"""Custom mixes from the buttons under a done song (shared.mixes, through the core).

The final message of a separated song offers the common backing tracks (the song without
one stem) and a custom mix: a chooser, shown in place of those buttons, with a toggle per
stem. A mix is a request of its own, of whoever pressed (their limits, their language): it
gets its own status message, answering the song's, which the delivery edits from "queued" to
the mix's link (and file) like any song's. Whatever the core refuses is said on that message;
a song whose stems are no longer kept (or not yet done) is said at the button (a toast), with
nothing posted.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Message

from bots.telegram.delivery import Status
from bots.telegram.deps import BotDeps
from bots.telegram.intake import follow, internal_error, rejection_text, reply_html, requester_of
from bots.telegram.render import (
    chooser_markup,
    final_markup,
    head,
    progress_text,
    stems_of,
)
from bots.telegram.texts import texts_of
from shared import mixes
from shared.errors import StembotError
from shared.models import MODEL_SOURCES
from shared.schemas import JobState, ProgressEvent, TelegramReply
from shared.stemnames import mix_label

log = logging.getLogger(__name__)


async def choose(deps: BotDeps, query: CallbackQuery, key: str, mask: int | None) -> None:
    """Show the chooser with the stems of ``mask`` ticked, or (None) the backing tracks again."""
    t = await texts_of(deps.store, query.from_user)
    message = query.message
    try:
        song, result = await mixes.song_of(deps.redis, key)
    except StembotError as exc:
        await query.answer(exc.message(t), show_alert=True)
        return
    await query.answer()
    if message is None:
        return
    if mask is None:
        markup = final_markup(t, result, message.chat.id)
    else:
        markup = chooser_markup(t, key, song.options.model, mask)
    await query.edit_message_reply_markup(markup)


async def make(deps: BotDeps, query: CallbackQuery, key: str, mask: int) -> None:
    """Make the mix of the stems of ``mask``: its own status message, followed to its link."""
    user = query.from_user
    t = await texts_of(deps.store, user)
    message = query.message
    try:
        song, result = await mixes.song_of(deps.redis, key)
        sources = MODEL_SOURCES[song.options.model]
        stems = mixes.check_stems(song.options.model, stems_of(sources, mask))
    except StembotError as exc:
        await query.answer(exc.message(t), show_alert=True)
        return
    await query.answer()
    if not isinstance(message, Message):  # gone, or too old for the bot to answer
        return
    title = f"{result.title} · {mix_label(t, sources, stems)}"
    queued = ProgressEvent(job_id="", request_ids=[], state=JobState.QUEUED)
    status = await reply_html(message, progress_text(t, title, queued))
    prefs = await deps.store.prefs(user.id)
    chat_id = message.chat.id
    reply = TelegramReply(
        chat_id=chat_id,
        message_id=status.message_id,
        user_id=user.id,
        lang=t.lang,
        title=title,
        files=prefs.files,
    )
    try:
        accepted = await deps.core.mix(
            requester_of(deps, user.id, chat_id), song, stems, None, reply
        )
    except StembotError as exc:
        reason = rejection_text(t, exc)
    except Exception as exc:
        reason = rejection_text(t, internal_error(exc))
    else:
        await follow(deps, Status(request_id=accepted.request_id, **dict(reply)), accepted)
        return
    await deps.messenger.edit_now(chat_id, status.message_id, head(title) + reason)
