"""The model catalogue: every Demucs model we offer, its stems and how it is described.

One home for what frontends show (names, labels) and what the worker and the job contract
need (the stems each model produces, in the model's order).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.i18n import N_


@dataclass(frozen=True)
class Model:
    name: str
    #: one line a user reads when choosing (Discord's menu, the page)
    label: str
    #: the stems it produces, in the model's output order
    sources: tuple[str, ...]


FOUR = ("drums", "bass", "other", "vocals")

CATALOGUE: dict[str, Model] = {
    m.name: m
    for m in (
        Model("htdemucs", N_("htdemucs: fast, good (default)"), FOUR),
        Model("htdemucs_ft", N_("htdemucs_ft: best quality, about 4x slower"), FOUR),
        Model(
            "htdemucs_6s",
            N_("htdemucs_6s: 6 stems incl. guitar and piano"),
            (*FOUR, "guitar", "piano"),
        ),
        Model("hdemucs_mmi", N_("hdemucs_mmi: older hybrid model"), FOUR),
        Model("mdx_extra_q", N_("mdx_extra_q: small quantized model"), FOUR),
    )
}
#: Model names, the default first.
MODELS: tuple[str, ...] = tuple(CATALOGUE)
#: Stems each model produces, in the model's order.
MODEL_SOURCES: dict[str, tuple[str, ...]] = {m.name: m.sources for m in CATALOGUE.values()}
#: The model with guitar and piano stems (the chat bots' "6 stems" mode).
SIX_STEM_MODEL = "htdemucs_6s"
