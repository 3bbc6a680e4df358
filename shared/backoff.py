"""How long a loop waits before it tries again: exponential backoff with full jitter, capped.

When Redis restarts, every worker and bot meets the outage at the same moment. With a fixed
schedule (0.5 s, 1 s, 2 s...) they would all try again at the same moments too, and come back
together in one burst. Full jitter draws each wait uniformly between 0 and the exponential
ceiling (``first_s``, doubling after each failure, at most ``max_s``), which spreads them out
(see "Exponential Backoff And Jitter" on the AWS Architecture Blog).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: Where the waits are drawn from unless a test passes a seeded one.
_RNG = random.Random()


def ceiling_s(failures: int, first_s: float, max_s: float) -> float:
    """The longest wait after ``failures`` failures in a row (1 or more): first_s doubled
    ``failures - 1`` times, at most max_s."""
    if failures < 1:
        raise ValueError(f"failures must be 1 or more, not {failures}")
    return min(max_s, first_s * 2.0 ** min(failures - 1, 64))


def full_jitter(
    failures: int, first_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """A wait drawn uniformly from [0, :func:`ceiling_s`]."""
    return (rng or _RNG).uniform(0.0, ceiling_s(failures, first_s, max_s))


@dataclass
class Backoff:
    """The waits of one retry loop: :meth:`failed` after each failure (the next wait),
    :meth:`succeeded` once it works again."""

    first_s: float = 0.5
    max_s: float = 30.0
    rng: random.Random = field(default_factory=lambda: _RNG)
    #: failures in a row so far
    failures: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError(f"need 0 < first_s <= max_s, not {self.first_s}, {self.max_s}")

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        return full_jitter(self.failures, self.first_s, self.max_s, self.rng)

    def succeeded(self) -> bool:
        """Start again from the shortest wait; True when there were failures before."""
        recovered, self.failures = self.failures > 0, 0
        return recovered
