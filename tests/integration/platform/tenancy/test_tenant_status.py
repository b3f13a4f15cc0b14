"""Unknown and disabled tenants: their credentials are refused with 401 problem+json."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from support.auth_live import issue_api_key
from support.tenant_world import TenantWorld, World, make_tenant, remove_tenants, world_slug

from ehr.core.error_handlers import PROBLEM_JSON
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.signing_keys import current_signing_key
from ehr.platform.auth.tokens import encode_access_token
from ehr.platform.tenancy import disable_tenant

pytestmark = pytest.mark.integration


def _refused(response: httpx.Response) -> None:
    assert response.status_code in (401, 403), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "items" not in response.json()


@pytest.fixture
async def tenant_c(world: World) -> AsyncIterator[TenantWorld]:
    label = f"c{uuid.uuid4().hex[:6]}"
    slug = world_slug(label, world.run)
    try:
        yield await make_tenant(label, world.run, world.sessionmaker, world.fhir, world.settings)
    finally:
        await remove_tenants([slug], world.fhir, world.sessionmaker)


async def test_a_disabled_tenants_tokens_and_keys_are_refused(
    api: httpx.AsyncClient, world: World, tenant_c: TenantWorld
) -> None:
    _, api_key = await issue_api_key(
        world.sessionmaker, tenant_c.tenant_id, name="matrix", permissions=["patient:read"]
    )
    token = tenant_c.auth(Role.PHYSICIAN)
    key = {"X-API-Key": api_key}
    assert (await api.get("/api/patients", headers=token)).status_code == 200
    assert (await api.get("/api/patients", headers=key)).status_code == 200

    async with world.sessionmaker() as session, session.begin():
        await disable_tenant(session, tenant_c.slug)

    _refused(await api.get("/api/patients", headers=token))
    _refused(await api.get("/api/patients", headers=key))
    _refused(await api.get(f"/api/patients/{tenant_c.patient['id']}", headers=token))


async def test_a_token_naming_an_unknown_tenant_is_refused(
    api: httpx.AsyncClient, world: World
) -> None:
    a = world.tenants["a"]
    async with world.sessionmaker() as session, session.begin():
        key = await current_signing_key(session, world.settings)
    for tenant, tenant_id in (
        ("no-such-tenant", uuid.uuid4()),  # unknown slug and id
        (world.tenants["b"].slug, world.tenants["b"].tenant_id),  # A's user claiming tenant B
    ):
        forged = encode_access_token(
            key,
            world.settings,
            subject=a.users[Role.PHYSICIAN],
            tenant_id=tenant_id,
            tenant=tenant,
            roles=["physician"],
        )
        _refused(
            await api.get("/api/patients", headers={"Authorization": f"Bearer {forged.token}"})
        )
