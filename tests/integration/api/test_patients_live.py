"""/api/patients against the real HAPI: create → read → search, idempotent create, paging.

The caller is a physician principal of the default tenant, injected with ``dependency_overrides``
(real tokens, roles and tenants are exercised by the acceptance matrix,
tests/integration/platform/auth/test_acceptance_matrix.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ehr.core.config import Settings
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import TenantFhirClient
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, scope="module")
def physician(app: FastAPI, settings: Settings) -> Iterator[Principal]:
    principal = Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=settings.fhir.default_tenant,
        tenant_id=uuid.uuid4(),
        roles=frozenset({"physician"}),
        username="live.physician",
    )

    async def as_physician() -> Principal:
        return principal

    app.dependency_overrides[get_current_principal] = as_physician
    try:
        yield principal
    finally:
        app.dependency_overrides.pop(get_current_principal, None)


TEST_MRN_SYSTEM = "urn:ehr:test:mrn"
TagForCleanup = Callable[[str, str], Awaitable[None]]


def make_new_patient(run_id: str, suffix: str, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "identifier": {"system": TEST_MRN_SYSTEM, "value": f"{run_id}-{suffix}"},
        "family": f"Zztest{run_id.replace('-', '')}",
        "given": ["Synthetic", suffix],
        "gender": "unknown",
        "birth_date": "1970-01-01",
    }
    payload.update(overrides)
    return payload


async def _create(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, payload: dict[str, Any]
) -> httpx.Response:
    response = await api.post("/api/patients", json=payload)
    assert response.status_code == 201, response.text
    await tag_for_cleanup("Patient", response.json()["id"])
    return response


async def test_create_read_search(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, run_id: str
) -> None:
    payload = make_new_patient(run_id, "crs")
    created = await _create(api, tag_for_cleanup, payload)
    patient = created.json()
    assert created.headers["location"] == f"/api/patients/{patient['id']}"
    assert patient["name"] == f"Synthetic crs {payload['family']}"
    assert patient["identifiers"] == [payload["identifier"]]

    read = await api.get(created.headers["location"])
    assert read.status_code == 200
    assert read.json() == patient

    identifier = f"{TEST_MRN_SYSTEM}|{run_id}-crs"
    found = await api.get("/api/patients", params={"identifier": identifier})
    assert found.status_code == 200
    assert found.json()["total"] == 1
    assert [item["id"] for item in found.json()["items"]] == [patient["id"]]

    by_name = await api.get(
        "/api/patients", params={"name": payload["family"], "birthdate": "1970-01-01"}
    )
    assert patient["id"] in [item["id"] for item in by_name.json()["items"]]


async def test_posting_the_same_identifier_twice_creates_one_patient(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    run_id: str,
) -> None:
    payload = make_new_patient(run_id, "twice")
    first = await _create(api, tag_for_cleanup, payload)
    second = await _create(api, tag_for_cleanup, payload)
    assert second.json()["id"] == first.json()["id"]
    bundle = await live_tenant_fhir.search(
        "Patient", {"identifier": f"{TEST_MRN_SYSTEM}|{run_id}-twice", "_summary": "count"}
    )
    assert bundle["total"] == 1


async def test_search_pages_through_next(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, run_id: str
) -> None:
    family = f"Zzpage{run_id.replace('-', '')}"
    for index in range(3):
        await _create(api, tag_for_cleanup, make_new_patient(run_id, f"page{index}", family=family))
    first = (await api.get("/api/patients", params={"name": family, "_count": "2"})).json()
    assert first["total"] == 3
    assert len(first["items"]) == 2
    assert first["next"]
    second = await api.get(first["next"])
    assert second.status_code == 200, second.text
    page_two = second.json()
    assert len(page_two["items"]) == 1
    ids = {item["id"] for item in first["items"]} | {item["id"] for item in page_two["items"]}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/patients/does-not-exist-0", None, 404, "fhir_not_found"),
        ("GET", "/api/patients/bad$id", None, 422, "validation_failed"),
        ("GET", "/api/patients?_count=0", None, 422, "validation_failed"),
        ("POST", "/api/patients", {"family": "X"}, 422, "validation_failed"),
    ],
)
async def test_bad_input_is_a_4xx_problem(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["code"] == code
    assert problem["request_id"] == response.headers["x-request-id"]
