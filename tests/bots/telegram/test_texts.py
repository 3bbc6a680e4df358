"""The bot's texts: who gets which language, and every text where Babel extracts it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from bots.telegram.texts import ADMIN_COMMANDS, COMMANDS, telegram_code, user_texts
from shared.i18n.catalogs import KEYWORDS

BOT = Path(__file__).resolve().parents[3] / "bots" / "telegram"


@pytest.mark.parametrize(
    ("language_code", "chosen", "lang"),
    [
        ("de", None, "de"),
        ("de-AT", None, "de"),
        ("DE", None, "de"),
        ("en-GB", None, "en"),
        ("pt-br", None, "pt_BR"),
        ("pt", None, "pt_BR"),
        ("es", None, "es"),
        ("ja", None, "en"),
        (None, None, "en"),
        ("es", "fr", "fr"),
        (None, "ru", "ru"),
    ],
)
def test_the_language_of_a_user(language_code: str | None, chosen: str | None, lang: str) -> None:
    assert user_texts(language_code, chosen).lang == lang


def test_command_menus_use_telegrams_two_letter_codes() -> None:
    codes = {lang: telegram_code(lang) for lang in ("en", "de", "es", "fr", "pt_BR", "ru")}
    assert codes == {"en": None, "de": "de", "es": "es", "fr": "fr", "pt_BR": "pt", "ru": "ru"}


def test_the_menus_descriptions_are_extracted() -> None:
    found = {
        message
        for _, _, message, _, _ in extract_from_dir(
            BOT, method_map=[("**.py", "python")], keywords=KEYWORDS
        )
    }
    missing = [
        about for about in (*COMMANDS.values(), *ADMIN_COMMANDS.values()) if about not in found
    ]
    assert missing == []


def test_plural_and_context_texts_are_literals() -> None:
    """``t.n_``/``t.p_`` take their texts as literals: Babel extracts nothing else."""
    loose = []
    for path in sorted(BOT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr in ("n_", "p_") and not all(
                isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args[:2]
            ):
                loose.append(f"{path.name}:{node.lineno}")
    assert loose == []
