"""The demo seed against the real stack: tenant ``demo`` with one user per role and the synthetic
patients in its partition; running it twice creates nothing the second time; the printed login
works and each demo user sees what its role allows.

The demo tenant is left in place (it is what ``make up`` creates on this stack anyway).
"""

from __future__ import annotations

import httpx
import pytest
from support.auth_live import bearer
from support.database import Sessions

from ehr.core.config import Environment, Settings
from ehr.entrypoints.seed import DEMO_MRN_SYSTEM
from ehr.entrypoints.seed.tenant import (
    DEMO_PASSWORD,
    DEMO_TENANT,
    DemoTenantReport,
    NotDevelopment,
    demo_username,
    seed_demo_tenant,
)
from ehr.fhir import FhirClient
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration


async def _seed(db: Sessions, live_fhir: FhirClient, settings: Settings) -> DemoTenantReport:
    async with db() as session, session.begin():
        return await seed_demo_tenant(session, live_fhir, settings)


async def _login(api: httpx.AsyncClient, role: str) -> dict[str, str]:
    response = await api.post(
        "/api/auth/login",
        json={"tenant": DEMO_TENANT, "username": demo_username(role), "password": DEMO_PASSWORD},
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def test_seed_twice_creates_the_demo_tenant_once(
    db: Sessions, live_fhir: FhirClient, settings: Settings, api: httpx.AsyncClient
) -> None:
    await _seed(db, live_fhir, settings)
    second = await _seed(db, live_fhir, settings)
    assert not second.tenant_created
    assert second.users_created == []
    assert sorted(second.users_existing) == sorted(f"demo.{role.value}" for role in Role)
    patients = second.patients
    assert patients is not None
    assert patients.patients == 5
    assert patients.created_total == 0
    demo = live_fhir.for_tenant(DEMO_TENANT)
    count = await demo.search("Patient", {"identifier": f"{DEMO_MRN_SYSTEM}|", "_summary": "count"})
    assert count["total"] == 5

    physician = await _login(api, "physician")
    page = (await api.get("/api/patients", headers=physician)).json()
    assert page["total"] == 5
    portal = await _login(api, "patient")
    mine = (await api.get("/api/patients", headers=portal)).json()
    assert len(mine["items"]) == 1
    assert mine["items"][0]["identifiers"][0]["value"] == "DEMO-0001"
    admin = await _login(api, "admin")
    assert (await api.get("/api/patients", headers=admin)).status_code == 403


async def test_seed_is_refused_outside_development(
    db: Sessions, live_fhir: FhirClient, settings: Settings
) -> None:
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(NotDevelopment):
        await _seed(db, live_fhir, production)
