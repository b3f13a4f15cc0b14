"""API keys: create, use (X-API-Key and bearer), list, revoke, rotate, expiry, tenant binding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from support.auth_live import (
    MakeAccount,
    MakeUser,
    access_token,
    bearer,
    issue_api_key,
)
from support.database import Sessions
from support.tenants import MakeTenant

from ehr.core.db.models import ApiKey, Tenant

pytestmark = pytest.mark.integration


async def _admin_headers(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> tuple[Tenant, dict[str, str]]:
    tenant, admin = await make_account(roles=["admin"])
    access = await access_token(client, tenant, admin)
    return tenant, bearer(access)


async def _billing_key(client: httpx.AsyncClient, admin: dict[str, str], name: str) -> Any:
    """A key with the billing role, created through the API (set-up: its answer as JSON)."""
    response = await client.post(
        "/api/admin/api-keys", headers=admin, json={"name": name, "roles": ["billing"]}
    )
    return response.json()


async def test_create_use_list_revoke(
    client: httpx.AsyncClient, make_account: MakeAccount, db: Sessions
) -> None:
    tenant, admin = await _admin_headers(client, make_account)
    created = await client.post(
        "/api/admin/api-keys",
        headers=admin,
        json={
            "name": "lab integration",
            "roles": ["lab_technician"],
            "permissions": ["schedule:read"],
            "scopes": ["system/Observation.cu"],
            "ttl_days": 30,
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(body["prefix"] + "_")
    assert body["prefix"].startswith("ehrk_")
    assert "perm:schedule:read" in body["scopes"]

    for headers in ({"X-API-Key": key}, bearer(key)):
        me = await client.get("/api/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "api_key"
        assert me.json()["tenant"] == tenant.slug
        assert "result:write" in me.json()["permissions"]  # from the role
        assert "schedule:read" in me.json()["permissions"]  # explicit grant
        assert "system/Observation.cu" in me.json()["scopes"]

    listed = await client.get("/api/admin/api-keys", headers=admin)
    assert listed.status_code == 200
    [summary] = listed.json()
    assert summary["id"] == body["id"]
    assert "key" not in summary
    assert key not in listed.text
    assert summary["last_used_at"] is not None  # recorded at first use

    revoked = await client.post(f"/api/admin/api-keys/{body['id']}/revoke", headers=admin)
    assert revoked.status_code == 204
    after = await client.get("/api/auth/me", headers={"X-API-Key": key})
    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"


async def test_rotate_replaces_the_key(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    _, admin = await _admin_headers(client, make_account)
    old = await _billing_key(client, admin, "svc")
    rotated = await client.post(f"/api/admin/api-keys/{old['id']}/rotate", headers=admin)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["rotated_from_id"] == old["id"]
    assert new["roles"] == ["billing"]
    assert new["key"] != old["key"]
    assert (await client.get("/api/auth/me", headers={"X-API-Key": new["key"]})).status_code == 200
    assert (await client.get("/api/auth/me", headers={"X-API-Key": old["key"]})).status_code == 401
    # a revoked key cannot be rotated again
    again = await client.post(f"/api/admin/api-keys/{old['id']}/rotate", headers=admin)
    assert again.status_code == 422


async def test_rotate_with_grace_keeps_the_old_key_briefly(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    _, admin = await _admin_headers(client, make_account)
    old = await _billing_key(client, admin, "svc")
    rotated = await client.post(
        f"/api/admin/api-keys/{old['id']}/rotate", headers=admin, json={"grace_seconds": 300}
    )
    assert rotated.status_code == 201
    assert (await client.get("/api/auth/me", headers={"X-API-Key": old["key"]})).status_code == 200


async def test_expired_key_is_refused(
    client: httpx.AsyncClient, make_tenant: MakeTenant, db: Sessions
) -> None:
    tenant = await make_tenant()
    key, plaintext = await issue_api_key(
        db, tenant.id, name="short-lived", permissions=["self:manage"], ttl_days=1
    )
    assert (await client.get("/api/auth/me", headers={"X-API-Key": plaintext})).status_code == 200
    async with db() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await client.get("/api/auth/me", headers={"X-API-Key": plaintext})).status_code == 401


async def test_admin_routes_need_the_permission_and_stay_in_the_tenant(
    client: httpx.AsyncClient, make_account: MakeAccount, make_user: MakeUser
) -> None:
    _, admin_a = await _admin_headers(client, make_account)
    tenant_b, admin_b = await _admin_headers(client, make_account)
    key_b = await _billing_key(client, admin_b, "b")
    # tenant A's admin neither sees nor touches tenant B's key
    assert (await client.get("/api/admin/api-keys", headers=admin_a)).json() == []
    for action in ("revoke", "rotate"):
        response = await client.post(f"/api/admin/api-keys/{key_b['id']}/{action}", headers=admin_a)
        assert response.status_code == 404
    assert (
        await client.get("/api/auth/me", headers={"X-API-Key": key_b["key"]})
    ).status_code == 200

    nurse = await make_user(tenant_b, roles=["nurse"])
    nurse_headers = bearer(await access_token(client, tenant_b, nurse))
    forbidden = await client.get("/api/admin/api-keys", headers=nurse_headers)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "roles": ["superuser"]},
        {"name": "x", "permissions": ["everything:all"]},
        {"name": "x"},
        {"name": "x", "roles": ["billing"], "ttl_days": 100_000},
        {"name": "x", "scopes": ["perm:admin"]},
    ],
)
async def test_bad_key_requests_are_422_and_create_nothing(
    client: httpx.AsyncClient, make_account: MakeAccount, payload: dict[str, object]
) -> None:
    _, admin = await _admin_headers(client, make_account)
    response = await client.post("/api/admin/api-keys", headers=admin, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/admin/api-keys", headers=admin)).json() == []
