"""Expensive-query protection: ``_count`` / ``_history`` / ``_total`` caps and the rate limit.

Caps rewrite the query rather than refuse it (a client asking for 10 000 rows gets pages of
``max_count``, which FHIR allows: the server may return fewer than asked). The rate limit is a
fixed one-minute window per client (user or API key id) in Redis: ``INCR`` + ``EXPIRE``, one round
trip; over the limit → 429 with ``Retry-After`` = seconds to the window's end. While Redis cannot
be reached the same window is counted in process
(:class:`~ehr.core.redis_store.LocalWindowCounter`):
the gateway keeps serving, each process enforcing the limit on its own (N replicas: up to N times
the limit per client) — docs/adr/0013-outages.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.config import GatewaySettings
from ehr.core.errors import BadRequestError, TooManyRequests
from ehr.core.redis_store import redis_health

__all__ = ["RATE_KEY_PREFIX", "cap_params", "check_rate_limit"]

RATE_KEY_PREFIX: Final = "ehr:fhir:rate:"
_WINDOW: Final = 60
_COMPONENT: Final = "fhir_rate_limit"


def _count_value(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise BadRequestError("_count must be a non-negative integer") from None
    if count < 0:
        raise BadRequestError("_count must be a non-negative integer")
    return count


def cap_params(
    kind: str, params: Sequence[tuple[str, str]], settings: GatewaySettings
) -> tuple[tuple[str, str], ...]:
    """``params`` with ``_count`` capped (and defaulted), ``_total=accurate`` downgraded.

    Searches: ``_count`` ≤ ``max_count`` (``default_count`` when absent). History: ``_count`` ≤
    ``max_history_count``, always set. Paging requests (``_getpages``) keep HAPI's own offsets but
    their ``_count`` is capped the same way. ``_total=accurate`` becomes ``estimate`` unless
    ``allow_total_accurate``.
    """
    if kind not in {"search", "history"}:
        return tuple(params)
    limit = settings.max_history_count if kind == "history" else settings.max_count
    out: list[tuple[str, str]] = []
    seen_count = False
    for name, value in params:
        if name == "_count":
            if seen_count:
                continue  # one _count only: the first (capped) wins
            seen_count = True
            out.append((name, str(min(_count_value(value), limit))))
        elif name == "_total" and value == "accurate" and not settings.allow_total_accurate:
            out.append((name, "estimate"))
        else:
            out.append((name, value))
    is_paging = any(name == "_getpages" for name, _ in params)
    if not seen_count and not is_paging:
        default = settings.max_history_count if kind == "history" else settings.default_count
        out.append(("_count", str(min(default, limit))))
    return tuple(out)


async def _redis_count(redis: Redis, key: str) -> int | None:
    """The window's count after this request, or None when Redis cannot answer."""
    health = redis_health(redis)
    if not health.available():
        return None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, _WINDOW * 2)
            count, _ = await pipe.execute()
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        return None
    health.succeeded()
    return int(count)


async def check_rate_limit(redis: Redis, client_id: str, per_minute: int) -> None:
    """Count one request for ``client_id``; 429 + Retry-After when over ``per_minute``."""
    now = time.time()
    window = int(now // _WINDOW)
    key = f"{RATE_KEY_PREFIX}{client_id}:{window}"
    count = await _redis_count(redis, key)
    if count is None:
        health = redis_health(redis)
        health.served_without_redis(_COMPONENT, "local")
        count, _ = health.local_counter(_COMPONENT, _WINDOW).incr(client_id, now=now)
    if count > per_minute:
        retry_after = max(1, int((window + 1) * _WINDOW - now) + 1)
        raise TooManyRequests(
            f"More than {per_minute} FHIR requests per minute", retry_after=retry_after
        )
