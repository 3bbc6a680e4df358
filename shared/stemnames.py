"""A stem's name as people read it, in their language: one rule for every frontend.

The files keep the English names the worker gives them (``vocals``, ``no_drums``,
``instrumental``, a custom mix's ``mix_bass_drums``); the chat messages, the results page and
the mix buttons show them through :func:`stem_label`.
"""

from __future__ import annotations

from shared.i18n import Texts
from shared.schemas import mix_name

#: What the file name of "every stem but one" starts with, and of a mix of several stems.
WITHOUT, MIX = "no_", "mix_"


def stem_label(t: Texts, name: str) -> str:
    """``vocals`` -> "vocals", ``no_drums`` -> "without drums", ``mix_bass_drums`` ->
    "bass + drums"; a name it does not know is shown as it is."""
    if name.startswith(WITHOUT):
        # TRANSLATORS: a stem: the song without one instrument, as in "without drums"
        return t.p_("stem", "without {stem}", stem=stem_label(t, name.removeprefix(WITHOUT)))
    if name.startswith(MIX):
        return " + ".join(stem_label(t, part) for part in name.removeprefix(MIX).split("_"))
    labels = {
        # TRANSLATORS: stem names, in the chat's links and on the results page
        "vocals": t.p_("stem", "vocals"),
        "drums": t.p_("stem", "drums"),
        "bass": t.p_("stem", "bass"),
        "other": t.p_("stem", "other"),
        "guitar": t.p_("stem", "guitar"),
        "piano": t.p_("stem", "piano"),
        # TRANSLATORS: a stem: everything but the vocals
        "instrumental": t.p_("stem", "instrumental"),
    }
    return labels.get(name, name)


def mix_label(t: Texts, sources: tuple[str, ...] | list[str], kept: tuple[str, ...]) -> str:
    """A custom mix of ``kept`` (of the model's ``sources``) as people read it."""
    return stem_label(t, mix_name(sources, kept))
