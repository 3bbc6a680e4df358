"""Who gets which language, the command menus' descriptions and the short labels several of the
bot's messages share.

Every text the bot shows is a catalogue message (shared.i18n): the English text is its id, the
other languages are in shared/locales. A user gets the language they chose in /settings, else
their Telegram app's (``language_code``, negotiated: pt -> pt_BR, anything else we do not
speak -> English).
"""

from __future__ import annotations

from telegram import User

from bots.telegram.store import Store
from shared.i18n import DEFAULT, N_, Texts, texts

#: The public commands, in the order Telegram shows them, with their menu descriptions.
COMMANDS: dict[str, str] = {
    "start": N_("What this bot does"),
    "help": N_("How to use it, and the limits"),
    "settings": N_("Default model, mode, format and language"),
    "status": N_("Your songs in progress"),
    "cancel": N_("Cancel your songs in progress"),
    "stem": N_("Split a song: reply to it, or add a link"),
    "forget": N_("Delete your data: settings, history, stems"),
}
#: The admin commands: not in the public menu; the bot's admins get them in theirs.
ADMIN_COMMANDS: dict[str, str] = {
    "limits": N_("Limits here (admins)"),
    "setlimit": N_("Set a limit: KEY VALUE (admins)"),
    "resetlimit": N_("Back to the default: KEY (admins)"),
    "ban": N_("Ban a user: id or reply (admins)"),
    "unban": N_("Lift a ban: id or reply (admins)"),
    "queue": N_("Songs waiting or in progress (admins)"),
    "stats": N_("Jobs, minutes, failures by day (admins)"),
    "audit": N_("Latest admin changes (admins)"),
}


def user_texts(language_code: str | None, chosen: str | None = None) -> Texts:
    """The texts for a user: the language chosen in /settings, else Telegram's ``language_code``."""
    return texts(chosen or language_code)


def telegram_code(lang: str) -> str | None:
    """The ``language_code`` a command menu is registered for (Telegram's two letters: pt for
    pt_BR); None for the default menu, which is English."""
    return None if lang == DEFAULT else lang.split("_")[0]


def mode_label(t: Texts, mode: str) -> str:
    """A split mode (store.Mode), as buttons and messages name it."""
    if mode == "4":
        # TRANSLATORS: a split mode: drums, bass, other, vocals
        return t.p_("mode", "4 stems")
    if mode == "2":
        # TRANSLATORS: a split mode (karaoke): the vocals, and everything else
        return t.p_("mode", "Vocals + instrumental")
    if mode == "6":
        # TRANSLATORS: a split mode: drums, bass, guitar, piano, other, vocals
        return t.p_("mode", "6 stems")
    # TRANSLATORS: the split mode setting: ask for the mode under each song
    return t.p_("mode", "Ask each time")


def state_label(t: Texts, state: str) -> str:
    """A job's state in /status."""
    if state == "downloading":
        return t.p_("job state", "downloading")
    if state == "decoding":
        return t.p_("job state", "reading")
    if state == "separating":
        return t.p_("job state", "separating")
    if state == "encoding":
        return t.p_("job state", "encoding")
    return t.p_("job state", "queued")


def switch_label(t: Texts, on: bool) -> str:
    """A setting that is on or off."""
    return t.p_("setting", "on") if on else t.p_("setting", "off")


async def texts_of(store: Store, user: User) -> Texts:
    """The texts for a Telegram user: their /settings choice, else their app's language."""
    return user_texts(user.language_code, await store.lang(user.id))
