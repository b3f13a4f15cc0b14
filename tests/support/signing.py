"""ES256 key pairs like the ones the platform signs access tokens with (tests only).

key = new_es256_key("kid-1")
key.active          # an ActiveSigningKey: what encode_access_token signs with
key.public_jwk      # the JWKS entry (kty EC, crv P-256, kid, use sig, alg ES256)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose.utils import long_to_base64

from ehr.platform.auth.signing_keys import ActiveSigningKey

__all__ = ["Es256Key", "new_es256_key"]


@dataclass(frozen=True)
class Es256Key:
    kid: str
    private_pem: bytes = field(repr=False)
    public_pem: bytes
    public_jwk: dict[str, Any]

    @property
    def active(self) -> ActiveSigningKey:
        return ActiveSigningKey(kid=self.kid, private_pem=self.private_pem)


def new_es256_key(kid: str) -> Es256Key:
    """A fresh P-256 key pair published under ``kid``."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key()
    numbers = public.public_numbers()
    return Es256Key(
        kid=kid,
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public_jwk={
            "kty": "EC",
            "crv": "P-256",
            "x": long_to_base64(numbers.x, size=32).decode(),
            "y": long_to_base64(numbers.y, size=32).decode(),
            "kid": kid,
            "use": "sig",
            "alg": "ES256",
        },
    )
