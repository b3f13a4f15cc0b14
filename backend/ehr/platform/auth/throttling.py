"""Per-IP throttling of the public authentication endpoints (Redis fixed-window counters).

Only FAILED attempts are counted: ``ehr:auth:ip:<bucket>:<ip>`` is incremented when a login,
MFA login or refresh fails with 401, and expires with its one-minute window. While the count is at
``settings.auth.login_attempts_per_ip_per_minute`` every attempt from that address gets 429
problem+json with ``retry_after`` and ``Retry-After`` — before any password is checked. Counting
failures only keeps a clinic behind one NAT address (many users logging in and refreshing at
shift change) from being throttled, while guessing from one address is cut off after a handful of
misses. Login, MFA login and refresh share the "auth" bucket.

Per-ACCOUNT protection is the lockout on the user row (:mod:`ehr.platform.auth.service`), in
PostgreSQL.

If Redis cannot be reached (or :func:`~ehr.core.redis_store.redis_health` says it was just failing),
the same counters are kept in process (:class:`~ehr.core.redis_store.LocalWindowCounter`): per
process, so with N replicas an address gets up to N times the limit — the per-account lockout,
which does not depend on Redis, still bounds guessing; failing closed would turn a Redis outage
into a login outage (docs/adr/0013-outages.md). The client address is the ASGI peer: run uvicorn
with ``--proxy-headers`` and ``--forwarded-allow-ips`` set to the load balancer so it is the
real client.
"""

from __future__ import annotations

from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.errors import TooManyRequests
from ehr.core.redis_store import LocalWindowCounter, RedisHealth, redis_health

__all__ = ["WINDOW_SECONDS", "AttemptsThrottled", "ensure_ip_allowed", "record_ip_failure"]

logger = structlog.get_logger(__name__)

WINDOW_SECONDS: Final = 60
_COMPONENT: Final = "auth_throttle"


class AttemptsThrottled(TooManyRequests):
    """429 with ``retry_after`` in the problem document and the ``Retry-After`` header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed authentication attempts from this address; retry later",
            retry_after=retry_after,
        )


def _key(bucket: str, ip: str) -> str:
    return f"ehr:auth:ip:{bucket}:{ip[:64]}"


def _local(health: RedisHealth) -> LocalWindowCounter:
    return health.local_counter(_COMPONENT, WINDOW_SECONDS)


async def _redis_count(redis: Redis, health: RedisHealth, key: str) -> tuple[int, int] | None:
    """(failures, seconds left) from Redis, or None when Redis cannot answer."""
    if not health.available():
        return None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        return None
    health.succeeded()
    return (0 if count is None else int(count)), (int(ttl) if int(ttl) > 0 else WINDOW_SECONDS)


async def ensure_ip_allowed(redis: Redis, *, ip: str, limit: int, bucket: str = "auth") -> None:
    """Raise :class:`AttemptsThrottled` (429) while ``ip`` has ``limit`` failures this window."""
    key = _key(bucket, ip)
    health = redis_health(redis)
    counted = await _redis_count(redis, health, key)
    if counted is None:
        health.served_without_redis(_COMPONENT, "local")
        counted = _local(health).get(key)
    count, retry_after = counted
    if count >= limit:
        logger.info("auth.throttle.ip_limited", bucket=bucket)
        raise AttemptsThrottled(retry_after)


async def record_ip_failure(redis: Redis, *, ip: str, bucket: str = "auth") -> None:
    """Count one failed attempt from ``ip`` in the current window."""
    key = _key(bucket, ip)
    health = redis_health(redis)
    if health.available():
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS, nx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            health.failed(_COMPONENT, exc)
        else:
            health.succeeded()
            return
    health.served_without_redis(_COMPONENT, "local")
    _local(health).incr(key)
