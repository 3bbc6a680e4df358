"""What the limits tell people: a refused request, an admin's value out of range, in the
user's language (shared.i18n)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.i18n import ENGLISH, N_, Texts

if TYPE_CHECKING:
    from shared.limits.limiter import Decision
    from shared.limits.policy import KeySpec


def format_duration(seconds: float, t: Texts = ENGLISH) -> str:
    """A wait, rounded up (never "0 min")."""
    return t.wait(seconds)


def _minutes(t: Texts, value: float) -> str:
    return t.n_("{n} minute", "{n} minutes", round(value))


def message(decision: Decision, t: Texts = ENGLISH) -> str:
    """What to tell the user about a refused request."""
    retry = t.wait(decision.retry_after_s or 0)
    if decision.reason == "banned":
        return t._("You are banned from using this bot.")
    if decision.reason == "busy":
        return t._("The queue is full right now. Try again in about {retry}.", retry=retry)
    if decision.reason == "active":
        if decision.limit == 1:
            return t._("You already have a song in progress; wait for it to finish or cancel it.")
        return t.n_(
            "You already have {n} song in progress; wait for one to finish or cancel it.",
            "You already have {n} songs in progress; wait for one to finish or cancel it.",
            decision.limit or 0,
        )
    if decision.reason == "hourly":
        return t.n_(
            "You can start {n} song an hour. Try again in {retry}.",
            "You can start {n} songs an hour. Try again in {retry}.",
            decision.limit or 0,
            retry=retry,
        )
    if decision.reason == "mix_hourly":
        return t.n_(
            "You can make {n} mix an hour. Try again in {retry}.",
            "You can make {n} mixes an hour. Try again in {retry}.",
            decision.limit or 0,
            retry=retry,
        )
    if decision.reason == "daily":
        limit, used = decision.limit or 0, decision.used or 0.0
        want = decision.requested
        if want is not None and used < limit:
            return t._(
                "This song is {length} long, but only {left} of your {allowance} of audio for "
                "today are left. Send a shorter song, or try again in {retry}.",
                length=t.wait(want * 60),
                left=t.wait((limit - used) * 60),
                allowance=_minutes(t, limit),
                retry=retry,
            )
        return t._(
            "You have used your {allowance} of audio for today. Try again in {retry}.",
            allowance=_minutes(t, limit),
            retry=retry,
        )
    raise ValueError("the request was allowed: there is nothing to tell")


UNKNOWN_LIMIT = N_("Unknown limit {key}. Known limits: {known}.")
OUT_OF_RANGE = N_("{key} must be a whole number from {minimum} to {maximum}; got {raw}.")
OUT_OF_RANGE_ZERO = N_(
    "{key} must be a whole number from {minimum} to {maximum} (0 = unlimited); got {raw}."
)


def unknown_limit(key: str, known: list[str]) -> tuple[str, dict[str, str | int | float]]:
    """An admin named a limit that does not exist: a text and its values (InvalidOption)."""
    return UNKNOWN_LIMIT, {"key": repr(key), "known": ", ".join(known)}


def out_of_range(key: str, spec: KeySpec, raw: str) -> tuple[str, dict[str, str | int | float]]:
    """An admin's value for a limit is not a whole number in its range."""
    text = OUT_OF_RANGE_ZERO if spec.zero_unlimited else OUT_OF_RANGE
    return text, {"key": key, "minimum": spec.minimum, "maximum": spec.maximum, "raw": repr(raw)}
