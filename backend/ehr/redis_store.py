"""The Redis client factory (redis.asyncio).

Redis is a helper (rate limits, deny-lists, short caches, event streams), never the only copy of
anything. One pooled client per process, opened and closed by the app lifespan.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ehr.config import Settings

__all__ = ["create_redis"]


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
