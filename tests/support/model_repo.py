"""The test model repo: random weights of the real architectures (see worker.demo_models).

The writer is product code (`stembot models demo DIR`); the tests keep importing it from here.
"""

from __future__ import annotations

from worker.demo_models import (
    FOUR,
    FULL_HT,
    SIX,
    SMALL_D,
    SMALL_H,
    SMALL_HT,
    _bag,
    _package,
    _save,
    write_model_repo,
)

__all__ = [
    "FOUR",
    "FULL_HT",
    "SIX",
    "SMALL_D",
    "SMALL_H",
    "SMALL_HT",
    "_bag",
    "_package",
    "_save",
    "write_model_repo",
]
