"""The fhirpy query API runs on our pooled transport (respx sees it; aiohttp is never used)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import respx
from fhir_factories import BASE_URL, TENANT_BASE, make_bundle, make_patient
from fhirpy.base.searchset import Raw

from ehr.core.request_context import request_id_var
from ehr.fhir import (
    FhirClient,
    FhirInvalidRequest,
    FhirInvalidResourceType,
    FhirResourceNotFound,
    FhirUpstreamError,
    TenantFhirClient,
)


@pytest.fixture(autouse=True)
def no_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stock fhirpy opens an aiohttp session per request; ours must never do so."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("fhirpy opened an aiohttp session")

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", refuse)


async def test_search_set_fetch_goes_through_respx(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient(id="p-1"), make_patient(id="p-2")])
    )
    patients = (
        await tenant_fhir.resources("Patient")
        .search(family="Testperson", birthdate__ge="1970")
        .sort("-_lastUpdated")
        .limit(5)
        .fetch()
    )
    assert [p.id for p in patients] == ["p-1", "p-2"]
    assert patients[0]["resourceType"] == "Patient"
    params = route.calls.last.request.url.params
    assert params["family"] == "Testperson"
    assert params["birthdate"] == "ge1970"
    assert params["_sort"] == "-_lastUpdated"
    assert params["_count"] == "5"
    assert route.calls.last.request.headers["Accept"] == "application/fhir+json"


async def test_search_set_uses_the_tenant(hapi: respx.MockRouter, fhir_client: FhirClient) -> None:
    route = hapi.get(f"{BASE_URL}/clinic-2/Observation").respond(json=make_bundle())
    await (
        fhir_client.for_tenant("clinic-2")
        .resources("Observation")
        .search(Raw(**{"subject:Patient.identifier": "urn:x|1"}))
        .fetch()
    )
    assert route.calls.last.request.url.params["subject:Patient.identifier"] == "urn:x|1"


async def test_request_id_is_forwarded(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle())
    token = request_id_var.set("req-fhirpy")
    try:
        await tenant_fhir.resources("Patient").fetch_raw()
    finally:
        request_id_var.reset(token)
    assert route.calls.last.request.headers["X-Request-ID"] == "req-fhirpy"


async def test_fetch_all_follows_paging_links_on_our_base(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle(
            [make_patient(id="p-1")],
            next_url="http://hapi-internal:8080/fhir/DEFAULT?_getpages=abc&_getpagesoffset=1",
        )
    )
    page_two = hapi.get(TENANT_BASE, params={"_getpages": "abc"}).respond(
        json=make_bundle([make_patient(id="p-2")])
    )
    patients = await tenant_fhir.resources("Patient").fetch_all()
    assert [p.id for p in patients] == ["p-1", "p-2"]
    assert page_two.calls.last.request.url.params["_getpagesoffset"] == "1"


async def test_paging_link_into_another_tenant_is_refused(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        json=make_bundle([make_patient()], next_url=f"{BASE_URL}/OTHER?_getpages=abc")
    )
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.resources("Patient").fetch_all()


async def test_count(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle(total=42))
    assert await tenant_fhir.resources("Patient").search(gender="unknown").count() == 42
    assert route.calls.last.request.url.params["_count"] == "0"


async def test_resource_save_posts_through_the_pool(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.post(f"{TENANT_BASE}/Patient").respond(201, json=make_patient(id="new-1"))
    patient = tenant_fhir.resource("Patient", gender="unknown", birthDate="1970-01-01")
    await patient.save()
    assert patient.id == "new-1"
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert request.headers["Prefer"] == "return=representation"
    assert json.loads(request.content)["gender"] == "unknown"


async def test_errors_are_ours_not_fhirpys(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient").respond(500)
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(404)
    with pytest.raises(FhirUpstreamError):
        await tenant_fhir.resources("Patient").fetch()
    with pytest.raises(FhirResourceNotFound):
        await tenant_fhir.resources("Patient").client.get("Patient", "p-1")


async def test_instance_operation_through_fhirpy(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient/p-1/$everything").respond(json=make_bundle())
    reference = tenant_fhir.resources("Patient").client.reference("Patient", "p-1")
    await reference.execute("$everything", method="get")
    assert route.called


def test_resource_type_is_validated(tenant_fhir: TenantFhirClient) -> None:
    with pytest.raises(FhirInvalidResourceType):
        tenant_fhir.resources("../Patient")
    with pytest.raises(FhirInvalidResourceType):
        tenant_fhir.resource("patient")


@pytest.mark.parametrize(
    "path",
    [
        "Patient/../../OTHER/Patient",
        "Patient/%2e%2e/x",
        "Patient?_id=1",
        "Patient#x",
        "http://elsewhere.test/api/DEFAULT/Patient",
        "ftp://hapi.test/fhir/DEFAULT/Patient",
        f"{BASE_URL}/OTHER/Patient",
    ],
)
async def test_fhirpy_paths_cannot_escape_the_tenant(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, path: str
) -> None:
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.resources("Patient").client.execute(path, method="get")
    assert not hapi.calls


async def test_foreign_host_link_is_reanchored_not_followed(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    """An absolute link on another host but into our tenant is sent to *our* base URL."""
    route = hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle())
    await tenant_fhir.resources("Patient").client.execute(
        "http://elsewhere.test/fhir/DEFAULT/Patient", method="get"
    )
    assert route.calls.last.request.url.host == "hapi.test"
