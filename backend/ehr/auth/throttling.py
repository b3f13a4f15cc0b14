"""Per-IP throttling of the public authentication endpoints (Redis fixed-window counters).

``ehr:auth:ip:<bucket>:<ip>`` is incremented per attempt and expires with its one-minute window;
past ``settings.auth.login_attempts_per_ip_per_minute`` the caller gets 429 problem+json with
``retry_after`` (seconds). Login, MFA login and refresh share the "auth" bucket.

Per-ACCOUNT protection is the lockout on the user row (:mod:`ehr.auth.service`), in PostgreSQL.

If Redis cannot be reached the attempt is allowed (logged): the per-account lockout, which does
not depend on Redis, still bounds guessing; failing closed would turn a Redis outage into a
login outage. The client address is the ASGI peer: run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` set to the load balancer so it is the real client.
"""

from __future__ import annotations

from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.errors import TooManyRequests

__all__ = ["WINDOW_SECONDS", "AttemptsThrottled", "check_ip_rate"]

logger = structlog.get_logger(__name__)

WINDOW_SECONDS: Final = 60


class AttemptsThrottled(TooManyRequests):
    """429 with ``retry_after`` in the problem document and the ``Retry-After`` header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many authentication attempts from this address; retry later",
            retry_after=retry_after,
        )


async def check_ip_rate(redis: Redis, *, ip: str, limit: int, bucket: str = "auth") -> None:
    """Count one attempt from ``ip``; raise :class:`~ehr.errors.TooManyRequests` past ``limit``."""
    key = f"ehr:auth:ip:{bucket}:{ip[:64]}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
    except RedisError as exc:
        logger.warning("auth.throttle.redis_unavailable", error_type=type(exc).__name__)
        return
    if int(count) > limit:
        retry_after = int(ttl) if int(ttl) > 0 else WINDOW_SECONDS
        logger.info("auth.throttle.ip_limited", bucket=bucket)
        raise AttemptsThrottled(retry_after)
