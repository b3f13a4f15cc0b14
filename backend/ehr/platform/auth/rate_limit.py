"""The per-client request rate limit (the FHIR gateway's): a fixed one-minute window in Redis.

One counter per client (user or API key id) and window: ``ehr:fhir:rate:<client>:<window>``,
``INCR`` with an expiry of two windows. Over the limit → 429 with ``Retry-After`` = seconds to
the window's end. The counting normally happens inside the authentication's single Redis round
trip (:func:`ehr.platform.auth.dependencies.authenticate`, script in
:mod:`ehr.platform.auth.request_checks`); :func:`check_rate_limit` counts on its own (one round
trip) for callers that authenticated otherwise.

While Redis cannot be reached the same window is counted in process
(:class:`~ehr.core.redis_store.LocalWindowCounter`): the gateway keeps serving, each process
enforcing the limit on its own (N replicas: up to N times the limit per client) —
docs/adr/0013-outages.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.errors import TooManyRequests
from ehr.core.redis_store import RedisHealth, redis_health

__all__ = [
    "RATE_KEY_PREFIX",
    "RATE_KEY_TTL_SECONDS",
    "RateWindow",
    "check_rate_limit",
    "count_locally",
]

RATE_KEY_PREFIX: Final = "ehr:fhir:rate:"
WINDOW_SECONDS: Final = 60
# A window's counter outlives the window (a clock a little behind still finds it).
RATE_KEY_TTL_SECONDS: Final = WINDOW_SECONDS * 2
COMPONENT: Final = "fhir_rate_limit"


@dataclass(frozen=True, slots=True)
class RateWindow:
    """One request of ``client_id`` counted against ``per_minute`` in the current window."""

    client_id: str
    per_minute: int
    now: float
    window: int
    key: str

    @classmethod
    def now_for(cls, client_id: str, per_minute: int) -> RateWindow:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        return cls(client_id, per_minute, now, window, f"{RATE_KEY_PREFIX}{client_id}:{window}")

    def enforce(self, count: int) -> None:
        """429 + Retry-After when ``count`` (this request included) is over the limit."""
        if count > self.per_minute:
            retry_after = max(1, int((self.window + 1) * WINDOW_SECONDS - self.now) + 1)
            raise TooManyRequests(
                f"More than {self.per_minute} FHIR requests per minute", retry_after=retry_after
            )


def count_locally(health: RedisHealth, rate: RateWindow) -> int:
    """Count ``rate``'s request in process (Redis unreachable); the window's count."""
    health.served_without_redis(COMPONENT, "local")
    count, _ = health.local_counter(COMPONENT, WINDOW_SECONDS).incr(rate.client_id, now=rate.now)
    return count


async def check_rate_limit(redis: Redis, client_id: str, per_minute: int) -> None:
    """Count one request for ``client_id`` on its own round trip; 429 when over ``per_minute``."""
    rate = RateWindow.now_for(client_id, per_minute)
    health = redis_health(redis)
    count: int | None = None
    if health.available():
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.incr(rate.key)
                pipe.expire(rate.key, RATE_KEY_TTL_SECONDS)
                counted, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            health.failed(COMPONENT, exc)
        else:
            health.succeeded()
            count = int(counted)
    if count is None:
        count = count_locally(health, rate)
    rate.enforce(count)
