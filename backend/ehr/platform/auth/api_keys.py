"""API keys for service clients: tenant-bound, scoped, expiring, rotatable, revocable.

Format: ``ehrk_<prefix>_<secret>`` — ``prefix`` is 12 random hex characters (shown to operators,
stored as ``ehrk_<prefix>`` in ``api_keys.prefix``), ``secret`` 256 random bits (base64url). Only
the SHA-256 of the whole key is stored: the key is random, so a slow hash adds nothing, and the
hash is the lookup index. The plaintext is returned ONCE, at creation or rotation.

A key's grants, all checked by the same permission table as users:

* ``roles`` — role names (``ehr.platform.auth.permissions.Role``), granting their permissions;
* explicit permissions — stored in ``api_keys.scopes`` as ``perm:<permission>`` entries and
  surfaced as ``Principal.key_permissions``;
* other ``scopes`` entries — SMART-style scopes (``system/Patient.rs``), surfaced as
  ``Principal.scopes``.

Rotation issues a new key with the same grants and lifetime and revokes the old one at once by
default; ``grace_seconds`` lets the old key keep working that long (its ``expires_at`` is moved
forward) for clients that cannot swap keys atomically.

``last_used_at`` is written at most once a minute per key (a Redis ``SET NX`` gate, read in the
authentication's round trip; without Redis, on every use).

Revoking or rotating a key marks it changed (:func:`~ehr.platform.auth.principal_cache.
principal_changed`): when the transaction commits, cached identities of the key are dropped in
this process at once and, once its change stamp is written (``publish_principal_changes`` after
the commit, or this process's next authenticated request), in every other.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import ApiKey, Tenant
from ehr.core.errors import NotFoundError, RequestValidationFailed
from ehr.platform.auth.permissions import Permission, Role
from ehr.platform.auth.principal_cache import principal_changed

__all__ = [
    "API_KEY_PREFIX",
    "PERMISSION_SCOPE_PREFIX",
    "ApiKeyIdentity",
    "create_api_key",
    "hash_api_key",
    "key_permissions",
    "key_scopes",
    "last_used_key",
    "list_api_keys",
    "looks_like_api_key",
    "mark_used",
    "resolve_api_key",
    "revoke_api_key",
    "rotate_api_key",
]

logger = structlog.get_logger(__name__)

API_KEY_PREFIX: Final = "ehrk_"
PERMISSION_SCOPE_PREFIX: Final = "perm:"
LAST_USED_INTERVAL_SECONDS: Final = 60
_KEY_PATTERN: Final = re.compile(r"ehrk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
_SCOPE_PATTERN: Final = re.compile(r"[A-Za-z0-9_./:*-]{1,120}")


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """A valid key with its tenant (what authentication needs)."""

    key: ApiKey
    tenant: Tenant


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_PREFIX)


def hash_api_key(key: str) -> str:
    """What ``api_keys.key_hash`` stores for ``key`` (and what caches key it by)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_hash = hash_api_key


def last_used_key(key_id: uuid.UUID) -> str:
    """The Redis gate letting one request a minute write the key's ``last_used_at``."""
    return f"ehr:auth:api-key-used:{key_id}"


def _new_key() -> tuple[str, str]:
    prefix = API_KEY_PREFIX + secrets.token_hex(6)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def key_permissions(key: ApiKey) -> frozenset[str]:
    return frozenset(
        s.removeprefix(PERMISSION_SCOPE_PREFIX)
        for s in key.scopes
        if s.startswith(PERMISSION_SCOPE_PREFIX)
    )


def key_scopes(key: ApiKey) -> frozenset[str]:
    return frozenset(s for s in key.scopes if not s.startswith(PERMISSION_SCOPE_PREFIX))


def _validated_grants(
    roles: Sequence[str], permissions: Sequence[str], scopes: Sequence[str]
) -> tuple[list[str], list[str]]:
    known_roles = {r.value for r in Role}
    bad_roles = sorted(set(roles) - known_roles)
    if bad_roles:
        raise RequestValidationFailed(f"Unknown role(s): {', '.join(bad_roles)}")
    known_permissions = {p.value for p in Permission}
    bad_permissions = sorted(set(permissions) - known_permissions)
    if bad_permissions:
        raise RequestValidationFailed(f"Unknown permission(s): {', '.join(bad_permissions)}")
    for scope in scopes:
        if not _SCOPE_PATTERN.fullmatch(scope) or scope.startswith(PERMISSION_SCOPE_PREFIX):
            raise RequestValidationFailed("A scope is malformed")
    stored_scopes = sorted({PERMISSION_SCOPE_PREFIX + p for p in permissions} | set(scopes))
    return sorted(set(roles)), stored_scopes


async def create_api_key(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    roles: Sequence[str] = (),
    permissions: Sequence[str] = (),
    scopes: Sequence[str] = (),
    ttl_days: int,
    created_by: str | None,
    max_ttl_days: int = 365,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (shown once). Flushes."""
    if not 1 <= ttl_days <= max_ttl_days:
        raise RequestValidationFailed(f"ttl_days must be between 1 and {max_ttl_days}")
    name = name.strip()
    if not name or len(name) > 200:
        raise RequestValidationFailed("name must have 1 to 200 characters")
    stored_roles, stored_scopes = _validated_grants(roles, permissions, scopes)
    if not stored_roles and not stored_scopes:
        raise RequestValidationFailed("An API key needs at least one role, permission or scope")
    if await session.get(Tenant, tenant_id) is None:
        raise NotFoundError("No such tenant")
    prefix, plaintext = _new_key()
    key = ApiKey(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        key_hash=_hash(plaintext),
        roles=stored_roles,
        scopes=stored_scopes,
        created_by=created_by,
        expires_at=datetime.now(UTC) + timedelta(days=ttl_days),
    )
    session.add(key)
    await session.flush()
    logger.info("auth.api_key.created", api_key_id=str(key.id), prefix=prefix)
    return key, plaintext


async def _get(session: AsyncSession, key_id: uuid.UUID, *, for_update: bool = False) -> ApiKey:
    query = select(ApiKey).where(ApiKey.id == key_id)
    if for_update:
        query = query.with_for_update()
    key = (await session.scalars(query)).one_or_none()
    if key is None:
        raise NotFoundError("No such API key")
    return key


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    """Revoke at once (idempotent). Flushes."""
    key = await _get(session, key_id, for_update=True)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
        principal_changed(session, api_key_ids=[key.id])
        logger.info("auth.api_key.revoked", api_key_id=str(key.id))


async def rotate_api_key(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    created_by: str | None,
    grace_seconds: int = 0,
) -> tuple[ApiKey, str]:
    """A new key with the old one's grants and lifetime; the old one revoked (or, with
    ``grace_seconds`` > 0, expiring that long from now). Returns the new row and plaintext."""
    old = await _get(session, key_id, for_update=True)
    now = datetime.now(UTC)
    if old.revoked_at is not None or old.expires_at <= now:
        raise RequestValidationFailed("A revoked or expired API key cannot be rotated")
    lifetime = max(old.expires_at - old.created_at, timedelta(days=1))
    prefix, plaintext = _new_key()
    new = ApiKey(
        id=uuid.uuid4(),
        tenant_id=old.tenant_id,
        name=old.name,
        prefix=prefix,
        key_hash=_hash(plaintext),
        roles=list(old.roles),
        scopes=list(old.scopes),
        created_by=created_by,
        expires_at=now + lifetime,
        rotated_from_id=old.id,
    )
    if grace_seconds > 0:
        old.expires_at = min(old.expires_at, now + timedelta(seconds=grace_seconds))
    else:
        old.revoked_at = now
    session.add(new)
    await session.flush()
    principal_changed(session, api_key_ids=[old.id])
    logger.info("auth.api_key.rotated", api_key_id=str(new.id), replaced=str(old.id))
    return new, plaintext


async def list_api_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiKey]:
    """The tenant's keys, newest first (hashes never leave this module's callers' schemas)."""
    result = await session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at.desc())
    )
    return list(result.all())


async def resolve_api_key(session: AsyncSession, plaintext: str) -> ApiKeyIdentity | None:
    """The key and tenant when ``plaintext`` is a live key of an active tenant, else None."""
    if not _KEY_PATTERN.fullmatch(plaintext):
        return None
    row = (
        await session.execute(
            select(ApiKey, Tenant)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.key_hash == _hash(plaintext))
        )
    ).one_or_none()
    if row is None:
        return None
    key, tenant = row
    now = datetime.now(UTC)
    if key.revoked_at is not None or key.expires_at <= now or tenant.status != "active":
        return None
    return ApiKeyIdentity(key=key, tenant=tenant)


async def mark_used(session: AsyncSession, redis: Redis, key_id: uuid.UUID) -> bool:
    """Record ``last_used_at`` at most once per minute per key; True when written."""
    try:
        first = await redis.set(last_used_key(key_id), b"1", nx=True, ex=LAST_USED_INTERVAL_SECONDS)
    except RedisError:
        first = True
    if not first:
        return False
    await session.execute(
        update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
    )
    return True
