"""The access-token deny-list: PostgreSQL is the truth, Redis the fast path.

* Revoking writes a ``revoked_tokens`` row (in the request's transaction) and a Redis key
  ``ehr:auth:deny:<id>`` with TTL = the token's remaining lifetime — visible to every replica at
  once, well within the one-second requirement.
* Checking asks Redis for the token's ``jti`` and its refresh family (``fam:<sid>``, written
  when a family is revoked: logout, refresh-token reuse). A Redis miss is authoritative only
  while the marker ``ehr:auth:deny:ready`` exists: it is set (TTL :data:`DENY_READY_TTL_SECONDS`)
  after the deny-list was loaded from PostgreSQL, so a restarted or flushed Redis (marker gone)
  sends checks to PostgreSQL and re-warms Redis, and any entry Redis missed is back within the
  marker's TTL at the latest.
* Redis down (docs/adr/0013-outages.md): checks are answered by PostgreSQL, and a revocation
  still succeeds — its row is committed; the Redis key is kept in process
  (:attr:`~ehr.core.redis_store.RedisHealth.pending_denials`) and written by the next call that
  reaches Redis (a process that dies first leaves it to the marker's TTL). While Redis is down,
  every process checks PostgreSQL, so the revocation holds at once.
* Operational requirement: the Redis instance must not evict keys with a TTL (``noeviction``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import RefreshSession, RevokedToken
from ehr.core.redis_store import RedisHealth, redis_health

__all__ = [
    "DENY_KEY_PREFIX",
    "DENY_READY_KEY",
    "DENY_READY_TTL_SECONDS",
    "denials_written",
    "deny_ids",
    "family_marker",
    "is_revoked",
    "purge_expired",
    "queue_pending_denials",
    "revoke_access_token",
    "revoke_family_access",
    "revoked_in_postgres",
    "warm_deny_list",
]

logger = structlog.get_logger(__name__)

DENY_KEY_PREFIX: Final = "ehr:auth:deny:"
DENY_READY_KEY: Final = "ehr:auth:deny:ready"
# The ready marker expires: Redis is re-warmed from PostgreSQL at least this often, which bounds
# how long an entry Redis missed (its writer died while Redis was down) can go unseen there.
DENY_READY_TTL_SECONDS: Final = 300
_COMPONENT: Final = "revocation"
# Deny-list entries one process keeps for Redis at most (beyond: left to the marker's TTL).
_MAX_PENDING: Final = 100_000


def family_marker(family_id: uuid.UUID) -> str:
    """The deny-list id standing for every access token of a refresh family."""
    return f"fam:{family_id}"


def _ttl(expires_at: datetime) -> int:
    return max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 1)


def _defer(health: RedisHealth, token_id: str, expires_at: datetime) -> None:
    """Keep a deny-list entry for Redis until a call reaches it."""
    pending = health.pending_denials
    if token_id not in pending and len(pending) >= _MAX_PENDING:
        logger.warning("auth.revocation.pending_full", pending=len(pending))
        return
    pending[token_id] = expires_at.timestamp()
    health.served_without_redis(_COMPONENT, "postgres")


def deny_ids(jti: str, session_id: uuid.UUID | None) -> list[str]:
    """The deny-list ids a token is refused under: its jti and its refresh family's marker."""
    return [jti] if session_id is None else [jti, family_marker(session_id)]


def queue_pending_denials(pipe: Pipeline, health: RedisHealth) -> list[str]:
    """Add the pending entries' SETs to ``pipe``; the ids queued (expired ones are dropped)."""
    now = datetime.now(UTC).timestamp()
    queued: list[str] = []
    for token_id, expires in list(health.pending_denials.items()):
        if expires <= now:
            del health.pending_denials[token_id]
            continue
        pipe.set(DENY_KEY_PREFIX + token_id, b"1", ex=max(1, int(expires - now) + 1))
        queued.append(token_id)
    return queued


def denials_written(health: RedisHealth, queued: list[str]) -> None:
    for token_id in queued:
        health.pending_denials.pop(token_id, None)
    if queued:
        logger.info("auth.revocation.pending_written", entries=len(queued))


async def _deny(
    session: AsyncSession,
    redis: Redis,
    *,
    token_id: str,
    user_id: uuid.UUID | None,
    expires_at: datetime,
    reason: str,
) -> None:
    await session.execute(
        insert(RevokedToken)
        .values(jti=token_id, user_id=user_id, expires_at=expires_at, reason=reason)
        .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
    )
    if expires_at <= datetime.now(UTC):
        return
    health = redis_health(redis)
    if not health.available():
        _defer(health, token_id, expires_at)
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            queued = queue_pending_denials(pipe, health)
            pipe.set(DENY_KEY_PREFIX + token_id, b"1", ex=_ttl(expires_at))
            await pipe.execute()
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        logger.warning("auth.revocation.redis_deferred", error_type=type(exc).__name__)
        _defer(health, token_id, expires_at)
        return
    health.succeeded()
    denials_written(health, queued)


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
    """Deny the access token ``jti`` until ``expires_at`` (its own exp).

    Never fails because Redis does (see the module doc); ``strict`` is accepted for existing
    callers and no longer changes anything.
    """
    del strict
    await _deny(session, redis, token_id=jti, user_id=user_id, expires_at=expires_at, reason=reason)


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
    """Deny every access token carrying ``sid`` = ``family_id`` (they all expire within the TTL).

    ``strict``: as in :func:`revoke_access_token` (accepted, no effect).
    """
    del strict
    await _deny(
        session,
        redis,
        token_id=family_marker(family_id),
        user_id=user_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=access_ttl_seconds),
        reason=reason,
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
        pipe.set(DENY_READY_KEY, b"1", ex=DENY_READY_TTL_SECONDS)
        await pipe.execute()
    logger.info("auth.revocation.warmed", entries=len(rows))
    return len(rows)


async def is_revoked(
    session: AsyncSession, redis: Redis, *, jti: str, session_id: uuid.UUID | None
) -> bool:
    """Whether the token ``jti`` (or its refresh family) has been revoked (on its own round
    trip; authentication checks it inside its single one, ehr.platform.auth.request_checks)."""
    ids = deny_ids(jti, session_id)
    health = redis_health(redis)
    redis_reachable = health.available()
    if redis_reachable:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                queued = queue_pending_denials(pipe, health)
                pipe.exists(DENY_READY_KEY)
                pipe.exists(*(DENY_KEY_PREFIX + i for i in ids))
                *_, ready, hits = await pipe.execute()
        except (RedisError, OSError) as exc:
            redis_reachable = False
            health.failed(_COMPONENT, exc)
        else:
            health.succeeded()
            denials_written(health, queued)
            if ready:
                return bool(hits)
    return await revoked_in_postgres(session, redis, ids, redis_reachable=redis_reachable)


async def revoked_in_postgres(
    session: AsyncSession, redis: Redis, ids: list[str], *, redis_reachable: bool
) -> bool:
    """The deny-list answer from PostgreSQL (Redis unreachable, or not warm: then re-warmed)."""
    health = redis_health(redis)
    if not redis_reachable:
        health.served_without_redis(_COMPONENT, "postgres")
    revoked = bool(await session.scalar(select(exists().where(RevokedToken.jti.in_(ids)))))
    if redis_reachable:
        try:
            await warm_deny_list(session, redis)
        except (RedisError, OSError) as exc:
            health.failed(_COMPONENT, exc)
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
