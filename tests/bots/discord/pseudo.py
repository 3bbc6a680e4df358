"""Pseudo-translated catalogues: every text the code marks, in each language, as "... [de]".

Built from the code itself (the same extraction as ``make messages``) into a folder of the
test's own, so a test can prove each text reaches the user in their language whatever the
real catalogues hold yet. Names of commands and options become "de-stem" (what Discord
accepts as a name); English stays English.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from bots.discord.language import COMMAND, OPTION, slash_name
from shared.i18n import DEFAULT, DOMAIN, LANGUAGES
from shared.i18n.catalogs import extract


def pseudo(lang: str, message: str, context: str | None) -> str:
    if context in (COMMAND, OPTION) and slash_name(message):
        return f"{lang.lower().replace('_', '')}-{message}"
    return f"{message} [{lang}]"  # after: a status message still starts with its emoji


def write_pseudo_catalogues(root: Path) -> Path:
    """``root/<lang>/LC_MESSAGES/messages.po`` for every language; returns ``root``."""
    template = extract()
    for lang in LANGUAGES:
        catalog = Catalog(locale=lang, domain=DOMAIN, fuzzy=False)
        for message in template:
            if not message.id:
                continue
            string: str | tuple[str, ...]
            if isinstance(message.id, (list, tuple)):
                one, many = message.id
                forms = [one] + [many] * (catalog.num_plurals - 1)
                string = tuple(f if lang == DEFAULT else pseudo(lang, f, None) for f in forms)
            else:
                string = (
                    message.id if lang == DEFAULT else pseudo(lang, message.id, message.context)
                )
            catalog.add(message.id, string, context=message.context)
        path = root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            write_po(po, catalog)
    return root
