"""The gateway with the REAL policy (ehr.platform.gateway.policy): the calls are wired as agreed.

The policy's own rules are tested by its author (test_policy*.py, test_matrix*.py); here only
that a physician reaches the partition, and that a patient-context read is answered from the
compartment search (own record 200, another patient's 404).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from support.tenant_world import World

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration


async def test_physician_reads_and_searches(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    tenant = gw.tenants["ga"]
    read = await api.get(
        f"/fhir/Patient/{tenant.patient['id']}", headers=tenant.auth(Role.PHYSICIAN)
    )
    assert read.status_code == 200, read.text
    search = await api.get(
        "/fhir/Patient", params={"_id": tenant.patient["id"]}, headers=tenant.auth(Role.PHYSICIAN)
    )
    assert search.status_code == 200, search.text
    assert search.json()["total"] == 1


async def test_patient_context_read_goes_through_the_compartment(
    api: httpx.AsyncClient, gw: World
) -> None:
    tenant = gw.tenants["ga"]
    own = await api.get(f"/fhir/Patient/{tenant.patient['id']}", headers=tenant.auth(Role.PATIENT))
    assert own.status_code == 200, own.text
    assert own.json()["id"] == tenant.patient["id"]
    assert own.headers["etag"].startswith('W/"')
    async with gw.sessionmaker() as session:
        record = (
            await session.execute(
                select(AuditRecord)
                .where(AuditRecord.tenant == tenant.slug, AuditRecord.action == "fhir:read")
                .where(AuditRecord.resource_id == tenant.patient["id"])
                .where(AuditRecord.actor_id == str(tenant.users[Role.PATIENT]))
            )
        ).scalar_one()
    assert record.patient_id == tenant.patient["id"]
    other = await api.get(
        f"/fhir/Patient/{tenant.restricted['id']}", headers=tenant.auth(Role.PATIENT)
    )
    assert other.status_code in {403, 404}, other.text
    assert other.json()["resourceType"] == "OperationOutcome"


async def test_other_tenant_ids_are_not_found(api: httpx.AsyncClient, gw: World) -> None:
    a, b = gw.tenants["ga"], gw.tenants["gb"]
    response = await api.get(f"/fhir/Patient/{b.patient['id']}", headers=a.auth(Role.PHYSICIAN))
    assert response.status_code == 404, response.text


async def test_conditional_create_criteria_stay_in_the_compartment(
    api: httpx.AsyncClient, gw: World
) -> None:
    tenant = gw.tenants["ga"]
    system, value = "urn:ehr:test:gw-cond", f"obs-{gw.run}"
    other = await gw.fhir.for_tenant(tenant.slug).create(
        {
            "resourceType": "Observation",
            "meta": {"tag": [{"system": "urn:ehr:test", "code": gw.run}]},
            "identifier": [{"system": system, "value": value}],
            "status": "final",
            "code": {"text": "gateway conditional"},
            "subject": {"reference": f"Patient/{tenant.restricted['id']}"},
        }
    )
    mine = {
        "resourceType": "Observation",
        "meta": {"tag": [{"system": "urn:ehr:test", "code": gw.run}]},
        "identifier": [{"system": system, "value": value}],
        "status": "final",
        "code": {"text": "gateway conditional"},
        "subject": {"reference": f"Patient/{tenant.patient['id']}"},
    }
    response = await api.post(
        "/fhir/Observation",
        content=json.dumps(mine),
        headers={
            **tenant.auth(Role.PATIENT),
            "Content-Type": "application/fhir+json",
            "If-None-Exist": f"identifier={system}|{value}",
        },
    )
    # Never the other patient's Observation (200 + its Location): a new one, or a refusal.
    assert response.status_code in {201, 403}, response.text
    assert other["id"] not in response.text
    assert other["id"] not in response.headers.get("location", "")


async def test_pages_follow_with_the_real_policy(api: httpx.AsyncClient, gw: World) -> None:
    tenant = gw.tenants["ga"]
    first = await api.get(
        "/fhir/Patient", params={"_count": "1"}, headers=tenant.auth(Role.PHYSICIAN)
    )
    assert first.status_code == 200, first.text
    next_url = next(link["url"] for link in first.json()["link"] if link["relation"] == "next")
    parts = urlsplit(next_url)
    second = await api.get(f"{parts.path}?{parts.query}", headers=tenant.auth(Role.PHYSICIAN))
    assert second.status_code == 200, second.text
    assert second.json()["resourceType"] == "Bundle"
