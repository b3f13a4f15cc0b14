"""Standard Webhooks signatures (https://www.standardwebhooks.com): the secret, the headers.

The secret is ``whsec_<base64 of 32 random bytes>``; the HMAC key is the decoded bytes. Each
request carries ``webhook-id`` (the event id: stable across retries, so receivers deduplicate),
``webhook-timestamp`` (unix seconds: receivers refuse old ones, which stops replays) and
``webhook-signature`` = ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final

__all__ = [
    "SECRET_PREFIX",
    "InvalidWebhookSecret",
    "generate_secret",
    "secret_key",
    "sign",
    "signature_headers",
    "verify",
]

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
_SECRET_BYTES: Final = 32


class InvalidWebhookSecret(ValueError):  # noqa: N818 - says what it is
    """Not a ``whsec_<base64>`` secret."""


def generate_secret() -> str:
    """A new signing secret (shown once to the tenant's administrator)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``whsec_<base64>`` (the prefix is optional, as the spec's libraries)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidWebhookSecret("the secret is not base64") from None
    if not key:
        raise InvalidWebhookSecret("the secret is empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    to_sign = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one request."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """True when one of the (space-separated) ``v1`` signatures matches (for receivers, tests)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    passed = lowered.get("webhook-signature", "")
    if not message_id or not timestamp or not timestamp.isdigit():
        return False
    expected = sign(secret, message_id, int(timestamp), body)
    return any(
        hmac.compare_digest(candidate, expected)
        for candidate in passed.split(" ")
        if candidate.startswith("v1,")
    )
