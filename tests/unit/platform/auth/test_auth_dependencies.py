"""get_current_principal refuses bad credentials before touching any backing service."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"X-API-Key": "not-an-api-key"},
        {"X-API-Key": "ehrk_x", "Authorization": "Bearer y"},
    ],
)
async def test_refused_with_a_bearer_challenge_without_any_backend(
    unit_api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # The unit settings point PostgreSQL and Redis at closed ports: reaching them would be 5xx.
    response = await unit_api.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="ehr"')
    assert response.json()["code"] == "authentication_required"


async def test_login_body_is_validated_before_any_backend(unit_api: httpx.AsyncClient) -> None:
    response = await unit_api.post(
        "/api/auth/login", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400  # not JSON at all: malformed, not invalid
    assert response.headers["content-type"] == "application/problem+json"
