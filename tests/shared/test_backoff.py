"""Backoff for the reconnect loops: exponential ceilings, capped, and full jitter so that
workers and bots that met the same Redis restart do not try again in lockstep."""

from __future__ import annotations

import random

import pytest

from shared.backoff import Backoff, ceiling_s, full_jitter


def test_the_ceiling_doubles_from_the_first_wait_up_to_the_cap() -> None:
    assert [ceiling_s(n, 0.5, 30.0) for n in range(1, 10)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0
    ]  # fmt: skip
    assert ceiling_s(10_000, 0.5, 30.0) == 30.0  # no overflow after a very long outage
    with pytest.raises(ValueError):
        ceiling_s(0, 0.5, 30.0)


def test_waits_stay_within_zero_and_the_ceiling_and_are_spread_out() -> None:
    rng = random.Random(14)
    for failures in range(1, 12):
        ceiling = ceiling_s(failures, 0.5, 30.0)
        waits = [full_jitter(failures, 0.5, 30.0, rng) for _ in range(2000)]
        assert 0.0 <= min(waits) and max(waits) <= ceiling
        # uniform over [0, ceiling]: each tenth of the range gets about a tenth of the waits
        tenths = [0] * 10
        for wait in waits:
            tenths[min(9, int(wait / ceiling * 10))] += 1
        assert all(140 <= n <= 260 for n in tenths), (failures, tenths)


def test_the_same_seed_gives_the_same_waits_and_two_loops_do_not_move_in_lockstep() -> None:
    def schedule(seed: int) -> list[float]:
        backoff = Backoff(first_s=0.5, max_s=30.0, rng=random.Random(seed))
        return [backoff.failed() for _ in range(8)]

    assert schedule(1) == schedule(1)
    first, second = schedule(1), schedule(2)
    assert all(a != b for a, b in zip(first, second, strict=True))
    # 20 workers that met the same outage: their first retries are spread over [0, 0.5 s]
    firsts = sorted(Backoff(rng=random.Random(seed)).failed() for seed in range(20))
    assert len(set(firsts)) == 20
    assert firsts[0] < 0.1 and firsts[-1] > 0.4


def test_a_success_starts_again_from_the_first_wait() -> None:
    rng = random.Random(7)
    backoff = Backoff(first_s=1.0, max_s=8.0, rng=rng)
    assert backoff.succeeded() is False  # nothing failed yet
    waits = [backoff.failed() for _ in range(6)]
    replay = random.Random(7)
    assert waits == [replay.uniform(0, c) for c in (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)]
    assert backoff.failures == 6
    assert backoff.succeeded() is True
    assert backoff.failures == 0
    assert backoff.failed() == replay.uniform(0, 1.0)


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError):
        Backoff(first_s=0.0)
    with pytest.raises(ValueError):
        Backoff(first_s=5.0, max_s=1.0)
