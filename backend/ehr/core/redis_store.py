"""The Redis client factory (redis.asyncio) and the degraded mode used while Redis is down.

Redis is a helper (rate limits, deny-lists, short caches, event streams), never the only copy of
anything. One pooled client per process, opened and closed by the app lifespan.

While Redis cannot be reached, every helper keeps its door serving (docs/adr/0013-outages.md):
the token deny-list is read from PostgreSQL (:mod:`ehr.platform.auth.revocation`), rate limits and
login
throttles count in process (:class:`LocalWindowCounter`: per process, so N replicas allow up to N
times the limit), and what has no durable copy (search-page and export-job ownership,
:mod:`ehr.platform.gateway.pages`) is refused for that interaction only (503). Each client has a
:class:`RedisHealth` (:func:`redis_health`): after a failure, helpers skip Redis for
:data:`RETRY_AFTER_SECONDS` (a black-holed Redis would otherwise cost a socket timeout on every
call), then the next call tries again. Entering and leaving degraded mode is logged once
(``redis.degraded.entered`` / ``redis.degraded.recovered``); ``ehr_redis_degraded`` is 1 while it
lasts and ``ehr_redis_degraded_operations_total{component,fallback}`` counts what was served
without Redis.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Final, Literal

import structlog
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from ehr.core.config import Settings

__all__ = [
    "DEGRADED",
    "DEGRADED_OPERATIONS",
    "RETRY_AFTER_SECONDS",
    "Fallback",
    "LocalWindowCounter",
    "RedisHealth",
    "create_redis",
    "redis_health",
]

logger = structlog.get_logger(__name__)

# After a failed call, helpers go straight to their fallback for this long, then retry Redis.
RETRY_AFTER_SECONDS: Final = 3.0
# Keys one in-process counter keeps at most (older windows are dropped first).
_LOCAL_MAX_KEYS: Final = 100_000

Fallback = Literal["postgres", "local", "refused", "skipped"]

DEGRADED: Final = Gauge(
    "ehr_redis_degraded",
    "1 while this process serves without Redis (helpers on their fallbacks), else 0.",
    # Several workers (ehr serve): 1 while ANY live worker is degraded.
    multiprocess_mode="livemax",
)
DEGRADED_OPERATIONS: Final = Counter(
    "ehr_redis_degraded_operations",  # exposed as ehr_redis_degraded_operations_total
    "Operations served without Redis, by component and fallback "
    "(postgres: read from the durable copy; local: in-process limiter; "
    "refused: 503 for that interaction; skipped: best-effort write not made).",
    ["component", "fallback"],
)


def create_redis(settings: Settings) -> Redis:
    """A pooled client for ``settings.redis.url`` (connects lazily; close with ``aclose()``)."""
    timeout = settings.redis.socket_timeout_seconds
    client: Redis = Redis.from_url(
        settings.redis.url.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
        decode_responses=False,
        client_name="ehr-api",
    )
    return client


class LocalWindowCounter:
    """Fixed one-window counters in process memory: the rate-limit fallback while Redis is down.

    Same semantics as the Redis counters (``INCR`` in a window of ``window_seconds``), but per
    process. Bounded: at most :data:`_LOCAL_MAX_KEYS` keys; a new window drops the old ones.
    """

    def __init__(self, window_seconds: int, *, max_keys: int = _LOCAL_MAX_KEYS) -> None:
        self._window_seconds = window_seconds
        self._max_keys = max_keys
        self._window = -1
        self._counts: dict[str, int] = {}

    def _roll(self, now: float) -> int:
        window = int(now // self._window_seconds)
        if window != self._window:
            self._window = window
            self._counts.clear()
        return window

    def incr(self, key: str, *, now: float | None = None) -> tuple[int, int]:
        """Count one event for ``key``; (count in this window, seconds left in the window)."""
        current = time.time() if now is None else now
        window = self._roll(current)
        count = self._counts.get(key, 0) + 1
        if key not in self._counts and len(self._counts) >= self._max_keys:
            # Full: forget the oldest key (dicts keep insertion order) rather than grow.
            self._counts.pop(next(iter(self._counts)))
        self._counts[key] = count
        return count, self._seconds_left(window, current)

    def get(self, key: str, *, now: float | None = None) -> tuple[int, int]:
        """(count for ``key`` in this window, seconds left in the window)."""
        current = time.time() if now is None else now
        window = self._roll(current)
        return self._counts.get(key, 0), self._seconds_left(window, current)

    def _seconds_left(self, window: int, now: float) -> int:
        return max(1, int((window + 1) * self._window_seconds - now) + 1)


@dataclass(eq=False)
class RedisHealth:
    """Whether this process currently reaches its Redis, and the in-process fallbacks' state."""

    retry_after_seconds: float = RETRY_AFTER_SECONDS
    # monotonic time of the last failure; None while Redis answers.
    failed_at: float | None = None
    degraded_since: float | None = None
    # Deny-list entries not yet mirrored to Redis (id → expiry, epoch seconds): written by the
    # next call that reaches Redis (ehr.platform.auth.revocation).
    pending_denials: dict[str, float] = field(default_factory=dict)
    limiters: dict[tuple[str, int], LocalWindowCounter] = field(default_factory=dict)

    @property
    def degraded(self) -> bool:
        return self.degraded_since is not None

    def available(self) -> bool:
        """False for :attr:`retry_after_seconds` after a failure: go to the fallback directly."""
        return (
            self.failed_at is None or time.monotonic() - self.failed_at >= self.retry_after_seconds
        )

    def failed(self, component: str, exc: BaseException) -> None:
        """A Redis call failed: enter (or stay in) degraded mode."""
        now = time.monotonic()
        self.failed_at = now
        if self.degraded_since is None:
            self.degraded_since = now
            DEGRADED.set(1)
            logger.warning(
                "redis.degraded.entered", component=component, error_type=type(exc).__name__
            )

    def succeeded(self) -> None:
        """A Redis call worked: leave degraded mode."""
        if self.degraded_since is None:
            return
        seconds = round(time.monotonic() - self.degraded_since, 3)
        self.failed_at = None
        self.degraded_since = None
        DEGRADED.set(0)
        logger.info("redis.degraded.recovered", seconds=seconds)

    def served_without_redis(self, component: str, fallback: Fallback) -> None:
        """Count one operation served by ``fallback`` (metric; logged at debug level)."""
        DEGRADED_OPERATIONS.labels(component=component, fallback=fallback).inc()
        logger.debug("redis.degraded.operation", component=component, fallback=fallback)

    def local_counter(self, name: str, window_seconds: int) -> LocalWindowCounter:
        """The in-process counter ``name`` (one per name and window length)."""
        key = (name, window_seconds)
        counter = self.limiters.get(key)
        if counter is None:
            counter = self.limiters[key] = LocalWindowCounter(window_seconds)
        return counter


_HEALTH: Final[weakref.WeakKeyDictionary[Redis, RedisHealth]] = weakref.WeakKeyDictionary()


def redis_health(redis: Redis) -> RedisHealth:
    """The degraded-mode state of ``redis`` (one per client: per app, per process)."""
    health = _HEALTH.get(redis)
    if health is None:
        health = _HEALTH[redis] = RedisHealth()
    return health
