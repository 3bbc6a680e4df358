"""What the limits tell people: a refused request, an admin's value out of range.

Every user-facing sentence of the limits is here, so they can move into the language
catalogues together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.formatting import wait

if TYPE_CHECKING:
    from shared.limits.limiter import Decision
    from shared.limits.policy import KeySpec


format_duration = wait  # shared.formatting: a wait, rounded up


def _songs(n: int | None) -> str:
    return "1 song" if n == 1 else f"{n} songs"


def _minutes(value: float) -> str:
    return f"{value:.0f} minute" if round(value) == 1 else f"{value:.0f} minutes"


def message(decision: Decision) -> str:
    """What to tell the user about a refused request."""
    retry = format_duration(decision.retry_after_s or 0)
    if decision.reason == "banned":
        return "You are banned from using this bot."
    if decision.reason == "busy":
        return f"The queue is full right now. Try again in about {retry}."
    if decision.reason == "active":
        if decision.limit == 1:
            return "You already have a song in progress; wait for it to finish or cancel it."
        return (
            f"You already have {_songs(decision.limit)} in progress; "
            "wait for one to finish or cancel it."
        )
    if decision.reason == "hourly":
        return f"You can start {_songs(decision.limit)} an hour. Try again in {retry}."
    if decision.reason == "daily":
        limit, used = decision.limit or 0, decision.used or 0.0
        want = decision.requested
        if want is not None and used < limit:
            left = format_duration((limit - used) * 60)
            return (
                f"This song is {format_duration(want * 60)} long, but only {left} of your "
                f"{_minutes(limit)} of audio for today are left. Send a shorter song, "
                f"or try again in {retry}."
            )
        return f"You have used your {_minutes(limit)} of audio for today. Try again in {retry}."
    raise ValueError("the request was allowed: there is nothing to tell")


def unknown_limit(key: str, known: list[str]) -> str:
    """An admin named a limit that does not exist."""
    return f"Unknown limit {key!r}. Known limits: {', '.join(known)}."


def out_of_range(key: str, spec: KeySpec, raw: str) -> str:
    """An admin's value for a limit is not a whole number in its range."""
    unlimited = " (0 = unlimited)" if spec.zero_unlimited else ""
    return (
        f"{key} must be a whole number from {spec.minimum} to {spec.maximum}{unlimited}; "
        f"got {raw!r}."
    )
