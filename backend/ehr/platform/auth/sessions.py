"""Refresh tokens: opaque, rotated on every use, in families with reuse detection.

* A refresh token is ``ehrr_`` + 256 random bits (base64url); only its SHA-256 is stored
  (``refresh_sessions.token_hash``). A login starts a family; every refresh marks the presented
  token ``rotated_at`` and issues a child in the same family.
* The family's lifetime is absolute: a child inherits its parent's ``expires_at``
  (``settings.auth.refresh_token_ttl_seconds`` after the login), so a stolen family cannot be
  kept alive forever by refreshing; the user logs in again.
* Presenting a token that was already rotated (or revoked) is reuse: the WHOLE family is
  revoked (and its access tokens deny-listed through the ``sid`` claim) and the answer is 401.
  That revocation is committed even though the request fails.
* The row is locked (``SELECT ... FOR UPDATE``) while it is rotated: two concurrent refreshes
  with one token are one rotation and one reuse.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import RefreshSession

__all__ = [
    "REFRESH_TOKEN_PREFIX",
    "IssuedRefreshToken",
    "RefreshOutcome",
    "create_refresh_session",
    "hash_refresh_token",
    "lock_refresh_session",
    "revoke_family",
    "revoke_user_sessions",
    "rotate_refresh_session",
]

logger = structlog.get_logger(__name__)

REFRESH_TOKEN_PREFIX: Final = "ehrr_"  # noqa: S105 - a public marker, not a secret
_MAX_LENGTH: Final = 128


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    token: str = field(repr=False)
    session_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What the presented token turned out to be."""

    status: str  # "ok" | "unknown" | "expired" | "reused"
    row: RefreshSession | None = None


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_refresh_session(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    ttl_seconds: int,
    source_ip: str | None,
    user_agent: str | None,
) -> IssuedRefreshToken:
    """Start a new family (a login). Flushes."""
    token = _new_token()
    family_id = uuid.uuid4()
    row = RefreshSession(
        id=uuid.uuid4(),
        user_id=user_id,
        family_id=family_id,
        parent_id=None,
        token_hash=hash_refresh_token(token),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        source_ip=source_ip,
        user_agent=(user_agent or "")[:512] or None,
    )
    session.add(row)
    await session.flush()
    return IssuedRefreshToken(token, row.id, family_id, row.expires_at)


async def lock_refresh_session(session: AsyncSession, token: str) -> RefreshOutcome:
    """Find and lock the presented token's row and classify it."""
    if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > _MAX_LENGTH:
        return RefreshOutcome("unknown")
    row = (
        await session.scalars(
            select(RefreshSession)
            .where(RefreshSession.token_hash == hash_refresh_token(token))
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return RefreshOutcome("unknown")
    if row.rotated_at is not None or row.revoked_at is not None:
        return RefreshOutcome("reused", row)
    if row.expires_at <= datetime.now(UTC):
        return RefreshOutcome("expired", row)
    return RefreshOutcome("ok", row)


async def rotate_refresh_session(
    session: AsyncSession,
    parent: RefreshSession,
    *,
    source_ip: str | None,
    user_agent: str | None,
) -> IssuedRefreshToken:
    """Mark ``parent`` rotated and issue its child (same family, same absolute expiry)."""
    now = datetime.now(UTC)
    parent.rotated_at = now
    token = _new_token()
    child = RefreshSession(
        id=uuid.uuid4(),
        user_id=parent.user_id,
        family_id=parent.family_id,
        parent_id=parent.id,
        token_hash=hash_refresh_token(token),
        expires_at=parent.expires_at,
        source_ip=source_ip,
        user_agent=(user_agent or "")[:512] or None,
    )
    session.add(child)
    await session.flush()
    return IssuedRefreshToken(token, child.id, child.family_id, child.expires_at)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, *, reason: str) -> int:
    """Revoke every live token of the family; returns how many were live. Flushes."""
    result = await session.execute(
        update(RefreshSession)
        .where(RefreshSession.family_id == family_id, RefreshSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
        .returning(RefreshSession.id)
    )
    count = len(result.all())
    logger.info("auth.refresh.family_revoked", family_id=str(family_id), reason=reason)
    return count


async def revoke_user_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, reason: str
) -> list[uuid.UUID]:
    """Revoke every live refresh token of a user (password change, disable); returns families."""
    result = await session.execute(
        update(RefreshSession)
        .where(RefreshSession.user_id == user_id, RefreshSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
        .returning(RefreshSession.family_id)
    )
    return sorted(set(result.scalars().all()))
