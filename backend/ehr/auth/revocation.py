"""The access-token deny-list: PostgreSQL is the truth, Redis the fast path.

* Revoking writes BOTH a ``revoked_tokens`` row (in the request's transaction) and a Redis key
  ``ehr:auth:deny:<id>`` with TTL = the token's remaining lifetime. A failed Redis write fails
  the revocation (``strict``; the transaction rolls back and the caller retries), so every
  committed revocation is also in Redis — and visible to every replica at once, well within the
  one-second requirement.
* Checking asks Redis for the token's ``jti`` and its refresh family (``fam:<sid>``, written
  when a family is revoked: logout, refresh-token reuse). A Redis miss is authoritative only
  while the marker ``ehr:auth:deny:ready`` exists: it is set after the deny-list was loaded
  from PostgreSQL, so a restarted or flushed Redis (marker gone) sends checks to PostgreSQL and
  re-warms Redis. If Redis cannot be reached, PostgreSQL answers.
* Operational requirement: the Redis instance must not evict keys with a TTL (``noeviction``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.db.models import RefreshSession, RevokedToken
from ehr.errors import DependencyUnavailable

__all__ = [
    "DENY_KEY_PREFIX",
    "DENY_READY_KEY",
    "family_marker",
    "is_revoked",
    "purge_expired",
    "revoke_access_token",
    "revoke_family_access",
    "warm_deny_list",
]

logger = structlog.get_logger(__name__)

DENY_KEY_PREFIX: Final = "ehr:auth:deny:"
DENY_READY_KEY: Final = "ehr:auth:deny:ready"


def family_marker(family_id: uuid.UUID) -> str:
    """The deny-list id standing for every access token of a refresh family."""
    return f"fam:{family_id}"


def _ttl(expires_at: datetime) -> int:
    return max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 1)


async def _deny(
    session: AsyncSession,
    redis: Redis,
    *,
    token_id: str,
    user_id: uuid.UUID | None,
    expires_at: datetime,
    reason: str,
    strict: bool,
) -> None:
    await session.execute(
        insert(RevokedToken)
        .values(jti=token_id, user_id=user_id, expires_at=expires_at, reason=reason)
        .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
    )
    if expires_at <= datetime.now(UTC):
        return
    try:
        await redis.set(DENY_KEY_PREFIX + token_id, b"1", ex=_ttl(expires_at))
    except RedisError as exc:
        logger.warning("auth.revocation.redis_failed", error_type=type(exc).__name__)
        if strict:
            raise DependencyUnavailable("The revocation store is unavailable; retry") from None


async def revoke_access_token(
    session: AsyncSession,
    redis: Redis,
    *,
    jti: str,
    user_id: uuid.UUID | None,
    expires_at: datetime,
    reason: str,
    strict: bool = True,
) -> None:
    """Deny the access token ``jti`` until ``expires_at`` (its own exp)."""
    await _deny(
        session,
        redis,
        token_id=jti,
        user_id=user_id,
        expires_at=expires_at,
        reason=reason,
        strict=strict,
    )


async def revoke_family_access(
    session: AsyncSession,
    redis: Redis,
    *,
    family_id: uuid.UUID,
    user_id: uuid.UUID | None,
    access_ttl_seconds: int,
    reason: str,
    strict: bool = True,
) -> None:
    """Deny every access token carrying ``sid`` = ``family_id`` (they all expire within the TTL)."""
    await _deny(
        session,
        redis,
        token_id=family_marker(family_id),
        user_id=user_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=access_ttl_seconds),
        reason=reason,
        strict=strict,
    )


async def warm_deny_list(session: AsyncSession, redis: Redis) -> int:
    """Copy every unexpired revocation from PostgreSQL to Redis, then set the ready marker."""
    rows = (
        await session.execute(
            select(RevokedToken.jti, RevokedToken.expires_at).where(
                RevokedToken.expires_at > datetime.now(UTC)
            )
        )
    ).all()
    async with redis.pipeline(transaction=False) as pipe:
        for jti, expires_at in rows:
            pipe.set(DENY_KEY_PREFIX + jti, b"1", ex=_ttl(expires_at))
        pipe.set(DENY_READY_KEY, b"1")
        await pipe.execute()
    logger.info("auth.revocation.warmed", entries=len(rows))
    return len(rows)


async def is_revoked(
    session: AsyncSession, redis: Redis, *, jti: str, session_id: uuid.UUID | None
) -> bool:
    """Whether the token ``jti`` (or its refresh family) has been revoked."""
    ids = [jti] if session_id is None else [jti, family_marker(session_id)]
    redis_reachable = True
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.exists(DENY_READY_KEY)
            pipe.exists(*(DENY_KEY_PREFIX + i for i in ids))
            ready, hits = await pipe.execute()
        if ready:
            return bool(hits)
    except RedisError as exc:
        redis_reachable = False
        logger.warning("auth.revocation.redis_unavailable", error_type=type(exc).__name__)
    revoked = bool(await session.scalar(select(exists().where(RevokedToken.jti.in_(ids)))))
    if redis_reachable:
        try:
            await warm_deny_list(session, redis)
        except RedisError as exc:
            logger.warning("auth.revocation.warm_failed", error_type=type(exc).__name__)
    return revoked


async def purge_expired(session: AsyncSession) -> int:
    """Delete revocations and refresh sessions past their expiry (a periodic operator job).

    Safe at any time: an expired token is refused by its ``exp`` alone. Flushes; returns rows.
    """
    now = datetime.now(UTC)
    revoked = await session.execute(
        delete(RevokedToken).where(RevokedToken.expires_at < now).returning(RevokedToken.jti)
    )
    sessions = await session.execute(
        delete(RefreshSession).where(RefreshSession.expires_at < now).returning(RefreshSession.id)
    )
    count = len(revoked.all()) + len(sessions.all())
    logger.info("auth.revocation.purged", rows=count)
    return count
