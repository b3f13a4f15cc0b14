"""ES256 signing keys for access tokens: creation, rotation, JWKS and a per-process cache.

* Keys live in ``signing_keys`` (private part Fernet-encrypted, :mod:`ehr.platform.auth.crypto`).
The
  newest key with ``retired_at IS NULL`` signs.
* :func:`rotate_signing_key` retires the signing key (``expires_at`` = now + the larger of
  ``retired_key_grace_seconds`` and the access-token lifetime, plus the cache time, so tokens
  it signed — here or on a replica that has not noticed yet — stay verifiable until they
  expire) and creates a new one.
* :func:`ensure_signing_key` creates the first key when there is none. Creation and rotation hold
  a transaction-scoped advisory lock, so several replicas starting at once create exactly one key.
* The JWKS publishes every key not yet expired.
* Each process caches the signing key and the verification keys for :data:`CACHE_SECONDS`; an
  unknown ``kid`` (a key another replica just created) reloads the verification keys at most
  once per :data:`UNKNOWN_KID_RELOAD_SECONDS` (a cheap query on a tiny table), so random kids
  cannot hammer the database. :func:`kid_is_current` answers from that cache for the
  verified-token cache of :mod:`ehr.platform.auth.tokens` (a key expired or deleted stops
  verifying cached tokens within the cache time, as it does uncached ones).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose.utils import long_to_base64
from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import SigningKey
from ehr.platform.auth.crypto import decrypt, encrypt

__all__ = [
    "ALGORITHM",
    "CACHE_SECONDS",
    "UNKNOWN_KID_RELOAD_SECONDS",
    "ActiveSigningKey",
    "build_jwks",
    "cached_verification_keys",
    "current_signing_key",
    "ensure_signing_key",
    "invalidate_cache",
    "kid_is_current",
    "rotate_signing_key",
    "verification_keys",
]

logger = structlog.get_logger(__name__)

ALGORITHM: Final = "ES256"
CACHE_SECONDS: Final = 30
UNKNOWN_KID_RELOAD_SECONDS: Final = 0.2
# pg_advisory_xact_lock key serialising key creation across replicas ("ehr-sign" as an int).
_ADVISORY_LOCK_KEY: Final = 0x6568722D7369676E


@dataclass(frozen=True, slots=True)
class ActiveSigningKey:
    kid: str
    private_pem: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _VerificationKey:
    jwk: dict[str, Any]
    expires_at: datetime | None


@dataclass(slots=True)
class _Cache:
    signing: ActiveSigningKey | None = None
    signing_loaded: float = 0.0
    verifying: dict[str, _VerificationKey] = field(default_factory=dict)
    verifying_loaded: float = float("-inf")


_cache = _Cache()


def invalidate_cache() -> None:
    """Forget cached keys (after a rotation in this process; tests)."""
    _cache.signing = None
    _cache.signing_loaded = 0.0
    _cache.verifying = {}
    _cache.verifying_loaded = float("-inf")


def _new_key_material(settings: Settings) -> tuple[str, bytes, dict[str, Any]]:
    kid = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(8)}"
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    numbers = private_key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": long_to_base64(numbers.x, size=32).decode("ascii"),
        "y": long_to_base64(numbers.y, size=32).decode("ascii"),
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
    }
    return kid, encrypt(settings, pem), jwk


async def _lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})


async def _active_key(session: AsyncSession) -> SigningKey | None:
    result = await session.scalars(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
        .limit(1)
    )
    return result.first()


async def ensure_signing_key(session: AsyncSession, settings: Settings) -> str:
    """The kid of the signing key, creating the first one if there is none (replica-safe).

    Flushes; the caller commits (the advisory lock is held until then).
    """
    key = await _active_key(session)
    if key is not None:
        return key.kid
    await _lock(session)
    key = await _active_key(session)
    if key is not None:
        return key.kid
    kid, private_encrypted, jwk = _new_key_material(settings)
    session.add(
        SigningKey(
            kid=kid, algorithm=ALGORITHM, private_key_encrypted=private_encrypted, public_jwk=jwk
        )
    )
    await session.flush()
    logger.info("auth.signing_key.created", kid=kid)
    return kid


async def rotate_signing_key(session: AsyncSession, settings: Settings) -> str:
    """Retire the current signing key (verifiable until its grace ends) and create a new one.

    Returns the new kid. Flushes; the caller commits.
    """
    await _lock(session)
    now = datetime.now(UTC)
    # Other replicas may sign with the retired key until their cache expires: its tokens must
    # stay verifiable for a full token lifetime after that.
    grace = (
        max(settings.auth.retired_key_grace_seconds, settings.auth.access_token_ttl_seconds)
        + CACHE_SECONDS
    )
    await session.execute(
        update(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .values(retired_at=now, expires_at=now + timedelta(seconds=grace))
    )
    kid, private_encrypted, jwk = _new_key_material(settings)
    session.add(
        SigningKey(
            kid=kid,
            algorithm=ALGORITHM,
            private_key_encrypted=private_encrypted,
            public_jwk=jwk,
            created_at=now,
        )
    )
    await session.flush()
    invalidate_cache()
    logger.info("auth.signing_key.rotated", kid=kid)
    return kid


async def current_signing_key(session: AsyncSession, settings: Settings) -> ActiveSigningKey:
    """The key that signs new tokens (cached; created if the table is empty)."""
    cached = _cache.signing
    if cached is not None and time.monotonic() - _cache.signing_loaded < CACHE_SECONDS:
        return cached
    kid = await ensure_signing_key(session, settings)
    row = await session.get(SigningKey, kid)
    if row is None:  # pragma: no cover - just created or selected in this transaction
        raise RuntimeError("signing key vanished")
    active = ActiveSigningKey(kid=kid, private_pem=decrypt(settings, row.private_key_encrypted))
    _cache.signing = active
    _cache.signing_loaded = time.monotonic()
    return active


async def _load_verification_keys(session: AsyncSession) -> dict[str, _VerificationKey]:
    rows = await session.scalars(
        select(SigningKey).where(
            SigningKey.algorithm == ALGORITHM,
            or_(SigningKey.expires_at.is_(None), SigningKey.expires_at > datetime.now(UTC)),
        )
    )
    return {row.kid: _VerificationKey(dict(row.public_jwk), row.expires_at) for row in rows}


def _needs_reload(wanted_kid: str | None) -> bool:
    now_mono = time.monotonic()
    if now_mono - _cache.verifying_loaded >= CACHE_SECONDS:
        return True
    return (
        wanted_kid is not None
        and wanted_kid not in _cache.verifying
        and now_mono - _cache.verifying_loaded >= UNKNOWN_KID_RELOAD_SECONDS
    )


def _usable(key: _VerificationKey, now: datetime) -> bool:
    return key.expires_at is None or key.expires_at > now


def cached_verification_keys(wanted_kid: str | None = None) -> dict[str, dict[str, Any]] | None:
    """:func:`verification_keys` from this process's cache, or None when it must be reloaded
    (stale, or ``wanted_kid`` unknown and the reload interval passed): no I/O."""
    if _needs_reload(wanted_kid):
        return None
    now = datetime.now(UTC)
    return {kid: key.jwk for kid, key in _cache.verifying.items() if _usable(key, now)}


def kid_is_current(kid: str) -> bool | None:
    """Whether ``kid`` may verify a token right now, from the cache; None when the cache must be
    reloaded first (the verified-token cache asks this on every use of a cached token)."""
    if _needs_reload(kid):
        return None
    key = _cache.verifying.get(kid)
    return key is not None and _usable(key, datetime.now(UTC))


async def verification_keys(
    session: AsyncSession, *, wanted_kid: str | None = None
) -> dict[str, dict[str, Any]]:
    """Public JWKs by kid of every key that may verify a token right now."""
    cached = cached_verification_keys(wanted_kid)
    if cached is not None:
        return cached
    _cache.verifying = await _load_verification_keys(session)
    _cache.verifying_loaded = time.monotonic()
    now = datetime.now(UTC)
    return {kid: key.jwk for kid, key in _cache.verifying.items() if _usable(key, now)}


async def build_jwks(session: AsyncSession) -> dict[str, Any]:
    """``{"keys": [...]}``: the public key of every signing key not yet expired."""
    keys = await _load_verification_keys(session)
    return {"keys": [key.jwk for key in sorted(keys.values(), key=lambda k: k.jwk["kid"])]}
