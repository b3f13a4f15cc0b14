"""Encryption at rest for small secrets (TOTP secrets, JWT signing keys).

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) with the keys in
``settings.auth.encryption_keys``: the FIRST key encrypts, EVERY key decrypts (``MultiFernet``).
Key rotation: prepend a new key, run :func:`reencrypt_all` (``ehr keys reencrypt``), then drop
the old key from the settings.
"""

from __future__ import annotations

from functools import lru_cache

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import MfaSecret, SigningKey

__all__ = ["SecretDecryptionFailed", "decrypt", "encrypt", "reencrypt", "reencrypt_all"]

logger = structlog.get_logger(__name__)


class SecretDecryptionFailed(Exception):  # noqa: N818 - says what happened, like ehr.core.errors
    """No configured key decrypts the value (a key was dropped before re-encryption)."""


@lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ValueError("settings.auth.encryption_keys is empty")
    return MultiFernet([Fernet(key.encode("ascii")) for key in keys])


def _fernet(settings: Settings) -> MultiFernet:
    return _multi_fernet(tuple(k.get_secret_value() for k in settings.auth.encryption_keys))


def encrypt(settings: Settings, plaintext: bytes) -> bytes:
    """Encrypt with the first configured key."""
    return _fernet(settings).encrypt(plaintext)


def decrypt(settings: Settings, ciphertext: bytes) -> bytes:
    """Decrypt with whichever configured key encrypted ``ciphertext``."""
    try:
        return _fernet(settings).decrypt(ciphertext)
    except InvalidToken as exc:
        raise SecretDecryptionFailed("no configured encryption key decrypts this value") from exc


def reencrypt(settings: Settings, ciphertext: bytes) -> bytes:
    """The same plaintext encrypted with the first (newest) key."""
    try:
        return _fernet(settings).rotate(ciphertext)
    except InvalidToken as exc:
        raise SecretDecryptionFailed("no configured encryption key decrypts this value") from exc


async def reencrypt_all(session: AsyncSession, settings: Settings) -> int:
    """Re-encrypt every MFA secret and signing key with the newest key; returns the row count.

    Run after prepending a new key and before removing the old one. Flushes; the caller commits.
    """
    count = 0
    for secret in (await session.scalars(select(MfaSecret).with_for_update())).all():
        secret.secret_encrypted = reencrypt(settings, secret.secret_encrypted)
        count += 1
    for key in (await session.scalars(select(SigningKey).with_for_update())).all():
        key.private_key_encrypted = reencrypt(settings, key.private_key_encrypted)
        count += 1
    await session.flush()
    logger.info("auth.crypto.reencrypted", rows=count)
    return count
