"""Backoff: never zero (no busy loop), doubling, capped; consumer retries never race a live
handler."""

from __future__ import annotations

import random

import pytest

from ehr.platform.events import jittered, retry_delay


@pytest.mark.parametrize("attempt", range(1, 40))
def test_jittered_delay_is_positive_and_capped(attempt: int) -> None:
    rng = random.Random(attempt)
    delay = jittered(attempt, base=0.5, cap=30.0, rng=rng)
    ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling
    assert delay > 0


def test_jittered_delay_doubles_until_the_cap() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    delays = [jittered(n, base=0.5, cap=30.0, rng=Top()) for n in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_no_failure_no_delay() -> None:
    assert jittered(0, base=0.5, cap=30.0) == 0.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    assert jittered(10_000, base=0.5, cap=30.0, rng=random.Random(1)) <= 30.0


def test_retry_delay_is_at_least_the_handler_timeout_then_grows_to_the_cap() -> None:
    delays = [retry_delay(n, timeout=5.0, base=1.0, cap=60.0) for n in range(1, 10)]
    assert delays == [5.0, 5.0, 5.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert retry_delay(0, timeout=5.0, base=1.0, cap=60.0) == 5.0
    # A timeout above the cap wins: a live handler is never raced.
    assert retry_delay(9, timeout=120.0, base=1.0, cap=60.0) == 120.0
