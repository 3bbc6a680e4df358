"""Which language a Discord user is answered in, and the commands in each of our languages.

Messages and embeds follow the language of the user's Discord client
(``interaction.locale``), negotiated to one of ours (shared.i18n); anything unsupported is
English. The request's language travels in its reply (``DiscordReply.lang``), so progress and
the end are written in it too.

Command names, descriptions, option names and choices are sent to Discord once, at sync, with
a translation for each Discord locale of our languages: discord.py asks :class:`Translator`
for each text, which finds it in the catalogues. Command texts are marked with :func:`p_`
(extracted like ``Texts.p_``) with where they appear as context ("command_name",
"option_description"...). A translation Discord would reject (a name with capitals or spaces, too
long) or a missing one is not sent: Discord then shows the English text.
"""

from __future__ import annotations

import discord
from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation as Where
from discord.app_commands import TranslationContextTypes, locale_str

from shared.i18n import Texts, negotiate, texts

#: The Discord client languages of each of ours (English is the commands' own text).
DISCORD_LOCALES: dict[str, tuple[Locale, ...]] = {
    "de": (Locale.german,),
    "es": (Locale.spain_spanish, Locale.latin_american_spanish),
    "fr": (Locale.french,),
    "pt_BR": (Locale.brazil_portuguese,),
    "ru": (Locale.russian,),
}
LANG_OF: dict[Locale, str] = {loc: lang for lang, locs in DISCORD_LOCALES.items() for loc in locs}
#: The catalogue context of command and menu names (also used where messages name a command).
COMMAND = "command_name"
OPTION = "option_name"
#: Discord's limits: names up to 32 characters, descriptions and choices up to 100.
NAME_MAX = 32
TEXT_MAX = 100


def p_(context: str, message: str, /, **extras: str) -> locale_str:
    """A command's text, marked for the catalogues with its context; translated at sync."""
    return locale_str(message, context=context, **extras)


def lang_of(interaction: discord.Interaction) -> str:
    """Our language for the user's Discord client language ('pt-BR' -> pt_BR, 'ja' -> en)."""
    return negotiate(str(interaction.locale))


def texts_of(interaction: discord.Interaction) -> Texts:
    """The texts of the language this interaction is answered in."""
    return texts(lang_of(interaction))


def slash_name(text: str) -> bool:
    """Whether Discord accepts ``text`` as a slash command, group or option name."""
    return (
        1 <= len(text) <= NAME_MAX
        and text == text.lower()
        and all(c.isalnum() or c in "-_" for c in text)
    )


def catalogued(t: Texts, message: str, context: str | None = None) -> str | None:
    """``message`` in ``t``'s language, or None when the catalogue does not translate it."""
    if not t.has(message, context):
        return None
    return t.p_(context, message) if context is not None else t._(message)


def command(t: Texts, *names: str) -> str:
    """A slash command as the user's client shows it: "/stemadmin set" in ``t``'s language."""
    shown = []
    for name in names:
        text = catalogued(t, name, COMMAND)
        shown.append(text if text is not None and slash_name(text) else name)
    return "/" + " ".join(shown)


def option(t: Texts, name: str) -> str:
    """An option's name as the user's client shows it (``file`` of /stem...)."""
    text = catalogued(t, name, OPTION)
    return text if text is not None and slash_name(text) else name


def menu(t: Texts, name: str) -> str:
    """A context menu's name as the user's client shows it ("Split stems")."""
    text = catalogued(t, name, COMMAND)
    return text if text is not None and 1 <= len(text) <= NAME_MAX else name


class Translator(app_commands.Translator):
    """The commands' texts from the catalogues (shared.i18n), for :meth:`CommandTree.sync`.

    A text marked with :func:`p_` is looked up with its context; one given an ``msgid``
    extra is looked up by that and shown after its ``prefix`` extra (a limit's key)."""

    async def translate(
        self, string: locale_str, locale: Locale, context: TranslationContextTypes
    ) -> str | None:
        lang = LANG_OF.get(locale)
        if lang is None:
            return None
        extras = string.extras
        found = catalogued(texts(lang), extras.get("msgid", string.message), extras.get("context"))
        if found is None:
            return None
        text = extras.get("prefix", "") + found
        return text if fits(text, context.location, context.data) else None


def fits(text: str, where: Where, data: object) -> bool:
    """Whether Discord accepts ``text`` where it goes in the command payload."""
    if where is Where.command_name and isinstance(data, app_commands.ContextMenu):
        return 1 <= len(text) <= NAME_MAX  # a menu's name may have capitals and spaces
    if where in (Where.command_name, Where.group_name, Where.parameter_name):
        return slash_name(text)
    return 1 <= len(text) <= TEXT_MAX
