"""The WebSocket's credential goes through the same ``authenticate`` as an /api request's
``Authorization`` header; its refusals become close codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.requests import HTTPConnection, Request
from support.principals import make_principal

from ehr.core.errors import DependencyUnavailable
from ehr.platform.auth.tokens import BearerChallenge
from ehr.platform.realtime import service
from ehr.platform.realtime.service import (
    TRY_AGAIN_LATER,
    UNAUTHENTICATED,
    ChannelClosedError,
    authenticate_credential,
)

SOCKET = HTTPConnection({"type": "websocket", "path": "/api/events/ws", "headers": []})
PRINCIPAL = make_principal("alpha", "physician")


class _Claims:
    expires_at = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=1)


async def test_the_token_is_checked_as_an_authorization_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    async def authenticate(request: Request, resources: object) -> object:
        seen["authorization"] = request.headers["authorization"]
        request.state.access_claims = _Claims()
        return PRINCIPAL

    monkeypatch.setattr(service, "authenticate", authenticate)
    monkeypatch.setattr(service, "access_claims", lambda request: request.state.access_claims)
    grant = await authenticate_credential(SOCKET, object(), "the-token")  # type: ignore[arg-type]
    assert seen["authorization"] == "Bearer the-token"
    assert grant.principal is PRINCIPAL
    assert grant.expires == _Claims.expires_at


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BearerChallenge("The access token has expired"), UNAUTHENTICATED),
        (DependencyUnavailable("PostgreSQL is unavailable"), TRY_AGAIN_LATER),
        (OSError("connection refused"), TRY_AGAIN_LATER),
    ],
)
async def test_refusals_and_outages_become_close_codes(
    monkeypatch: pytest.MonkeyPatch, error: Exception, code: int
) -> None:
    async def authenticate(request: Request, resources: object) -> object:
        raise error

    monkeypatch.setattr(service, "authenticate", authenticate)
    with pytest.raises(ChannelClosedError) as closed:
        await authenticate_credential(SOCKET, object(), "ehrk_secret")  # type: ignore[arg-type]
    assert closed.value.code == code
    assert "ehrk_secret" not in closed.value.reason  # the close frame never echoes it
