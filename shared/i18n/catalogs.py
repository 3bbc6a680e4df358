"""Keeping the catalogues in step with the code: ``make messages``.

Extracts every text the code marks (``t._``, ``t.n_``, ``t.p_``, ``N_``) into
``shared/locales/messages.pot`` and merges it into each language's ``messages.po``: new texts
arrive untranslated (English until a translator fills them in; the catalogue test fails until
then), texts gone from the code are dropped. The English catalogue is filled with the English
text itself.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from shared.i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALES

ROOT = LOCALES.parent.parent
#: Where user-facing texts live (the CLI's operator output stays English).
SOURCES = ("shared", "bots", "worker")
KEYWORDS: dict[str, tuple[int | tuple[int, str], ...] | None] = {
    "_": None,
    "n_": (1, 2),
    "p_": ((1, "c"), 2),
    "N_": None,
}
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
WIDTH = 100


def extract() -> Catalog:
    """Every marked text in the code, with where it is used."""
    template = Catalog(project="stembot", domain=DOMAIN, fuzzy=False)
    for folder in SOURCES:
        found = extract_from_dir(
            ROOT / folder,
            method_map=[("**.py", "python")],
            keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",),
            strip_comment_tags=True,
        )
        for filename, lineno, message, comments, context in found:
            where = (f"{folder}/{filename}", lineno)
            template.add(message, locations=[where], auto_comments=comments, context=context)
    return template


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as po:
        return read_po(po, locale=lang, domain=DOMAIN)


def write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po:
        write_po(po, catalog, width=WIDTH, sort_output=True, include_previous=False)


def update() -> None:
    template = extract()
    write(template, TEMPLATE)
    for lang in LANGUAGES:
        path = po_path(lang)
        if path.exists():
            catalog = read(lang)
            catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
            catalog.obsolete.clear()
        else:
            catalog = Catalog(locale=lang, domain=DOMAIN, project="stembot", fuzzy=False)
            catalog.update(copy.deepcopy(template), no_fuzzy_matching=True)
        if lang == DEFAULT:
            for message in catalog:
                if message.id:
                    message.string = message.id
                    message.flags.discard("fuzzy")
        write(catalog, path)
        missing = sum(1 for m in catalog if m.id and not translated(m.string))
        print(f"{lang}: {len(catalog)} texts, {missing} untranslated", file=sys.stderr)


def translated(string: object) -> bool:
    """Whether a catalogue entry's msgstr (or every plural form of it) is filled in."""
    if isinstance(string, (tuple, list)):
        return all(string)
    return bool(string)


if __name__ == "__main__":
    update()
