"""Fernet encryption at rest and key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ehr.core.config import AuthSettings, Settings
from ehr.platform.auth.crypto import SecretDecryptionFailed, decrypt, encrypt, reencrypt


def settings_with(*keys: bytes) -> Settings:
    return Settings(auth=AuthSettings(encryption_keys=[SecretStr(k.decode()) for k in keys]))


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    settings = settings_with(Fernet.generate_key())
    token = encrypt(settings, b"JBSWY3DPEHPK3PXP")
    assert b"JBSWY3DPEHPK3PXP" not in token
    assert decrypt(settings, token) == b"JBSWY3DPEHPK3PXP"


def test_rotation_first_key_encrypts_all_decrypt_then_old_key_dropped() -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    before = settings_with(old_key)
    old_token = encrypt(before, b"secret")

    during = settings_with(new_key, old_key)
    assert decrypt(during, old_token) == b"secret"
    rotated = reencrypt(during, old_token)
    assert Fernet(new_key).decrypt(rotated) == b"secret"

    after = settings_with(new_key)
    assert decrypt(after, rotated) == b"secret"
    with pytest.raises(SecretDecryptionFailed):
        decrypt(after, old_token)


def test_tampered_ciphertext_is_refused() -> None:
    settings = settings_with(Fernet.generate_key())
    token = bytearray(encrypt(settings, b"secret"))
    token[-5] ^= 1
    with pytest.raises(SecretDecryptionFailed):
        decrypt(settings, bytes(token))
