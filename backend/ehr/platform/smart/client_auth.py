"""Who is calling the token, introspection and revocation endpoints (RFC 6749 §2.3).

Exactly one way per request, and it must be the client's registered one:
``private_key_jwt`` (a ``client_assertion``: Backend Services and confidential apps with keys),
``client_secret_basic`` or ``client_secret_post`` (confidential apps with a secret), or none —
only ``client_id`` — for public apps (whose codes PKCE protects). Any failure is
``invalid_client`` (401), the same whichever part was wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Final
from urllib.parse import unquote

from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import SmartClient
from ehr.platform.smart.assertions import ASSERTION_TYPE, verify_assertion
from ehr.platform.smart.clients import PUBLIC_APP, find_client, secret_matches
from ehr.platform.smart.errors import OAuthError

__all__ = ["authenticate_client"]

_BASIC: Final = "basic "


def _refused(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status_code=401)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith(_BASIC):
        return None
    try:
        decoded = base64.b64decode(header[len(_BASIC) :].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _refused("The Basic credentials are malformed") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _refused("The Basic credentials are malformed")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Base64.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


async def authenticate_client(
    session: AsyncSession,
    form: Mapping[str, str],
    *,
    authorization: str | None,
    audience: str,
) -> SmartClient:
    """The registered, enabled client that authenticated this request (see the module doc)."""
    basic = _basic_credentials(authorization) if authorization else None
    assertion = form.get("client_assertion")
    posted_secret = form.get("client_secret")
    ways = sum(x is not None for x in (basic, assertion, posted_secret))
    if ways > 1:
        raise _refused("Use exactly one client authentication method")
    if assertion is not None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        return await verify_assertion(
            session, assertion, client_id=form.get("client_id") or None, audience=audience
        )
    if basic is not None or posted_secret is not None:
        client_id, secret = (
            basic if basic is not None else (form.get("client_id", ""), posted_secret or "")
        )
        if basic is not None and form.get("client_id") not in (None, "", client_id):
            raise _refused("client_id differs from the Basic credentials")
        client = await find_client(session, client_id)
        if client is None or client.disabled_at is not None or not secret_matches(client, secret):
            raise _refused("Unknown client or wrong secret")
        return client
    client = await find_client(session, form.get("client_id", ""))
    if client is None or client.disabled_at is not None:
        raise _refused("Unknown or disabled client")
    if client.kind != PUBLIC_APP:
        raise _refused("This client must authenticate")
    return client
