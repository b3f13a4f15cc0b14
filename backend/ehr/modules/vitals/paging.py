"""The vitals list's page tokens: HAPI's ``next`` link sealed into an opaque token bound to the
tenant and the patient (HMAC-SHA256), like the patients search: a token cannot be forged, read
for another patient, or replayed in another tenant.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from ehr.core.errors import BadRequestError

__all__ = ["InvalidPageTokenError", "PageTokens", "vitals_path"]

_TOKEN_MAC_BYTES: Final = 16


class InvalidPageTokenError(BadRequestError):
    """A ``page_token`` not issued by this service for this tenant and patient."""

    code = "invalid_page_token"
    title = "Invalid page token"


def vitals_path(patient_id: str) -> str:
    return f"/api/patients/{patient_id}/vitals"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Seals and opens the page tokens of one tenant's vitals lists."""

    def __init__(self, key: bytes, tenant: str) -> None:
        self._key = key
        self._tenant = tenant

    def _mac(self, patient_id: str, url: bytes) -> bytes:
        message = f"vitals.page:{self._tenant}/Patient/{patient_id}:".encode() + url
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]

    def seal(self, patient_id: str, url: str) -> str:
        raw = url.encode()
        return f"{_b64(raw)}.{_b64(self._mac(patient_id, raw))}"

    def open(self, patient_id: str, token: str) -> str:
        try:
            body, mac = token.split(".", 1)
            raw, given_mac = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error):
            raise InvalidPageTokenError("The page token is malformed.") from None
        if not hmac.compare_digest(given_mac, self._mac(patient_id, raw)):
            raise InvalidPageTokenError("The page token was not issued for this list.")
        return raw.decode()
