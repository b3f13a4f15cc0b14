"""Exponential backoff with full jitter (relay) and the consumers' retry schedule."""

from __future__ import annotations

import random

__all__ = ["jittered", "retry_delay"]


def jittered(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1`` after ``attempt`` (>= 1) consecutive failures:
    uniform in [d/2, d] with d = min(cap, base * 2^(attempt-1)) — never zero (no busy loop),
    never above ``cap``, spread so that many relays do not retry in step."""
    if attempt < 1:
        return 0.0
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    pick = (rng or random).uniform(0.5, 1.0)
    return float(ceiling * pick)


def retry_delay(deliveries: int, *, timeout: float, base: float, cap: float) -> float:
    """How long an entry delivered ``deliveries`` times (and not acknowledged) waits before it is
    claimed again: at least the handler timeout (a live, slow handler is not raced), growing
    base * 2^(deliveries-1), at most ``cap`` (or the timeout, if that is larger)."""
    grown = min(cap, base * (2 ** min(max(deliveries, 1) - 1, 62)))
    return float(max(timeout, grown))
