"""Tenant, type, id and operation validation: nothing malformed reaches a HAPI URL."""

from __future__ import annotations

import pytest
import respx
from fhir_factories import BASE_URL, make_patient

from ehr.fhir import (
    FhirClient,
    FhirInvalidId,
    FhirInvalidRequest,
    FhirInvalidResourceType,
    FhirInvalidTenant,
    TenantFhirClient,
)
from ehr.fhir.addressing import (
    search_condition,
    tenant_page_url,
    validate_operation,
    weak_etag,
)

BAD_TENANTS = [
    "",
    "-lead",
    "_lead",
    "a/b",
    "a b",
    "..",
    "../OTHER",
    "DEFAULT?x=1",
    "DEFAULT#x",
    "t%2Fx",
    "ten\u00e4nt",
    "a" * 65,
    "DEFAULT\n",
]
BAD_TYPES = ["", "patient", "P", "Patient1", "Patient/1", "../Patient", "Pat ient", "$everything"]
BAD_IDS = ["", ".", "..", "...", "a/b", "a b", "a?b", "a#b", "a%2Fb", "a_b", "x" * 65, "\u00e9"]


@pytest.mark.parametrize("tenant", BAD_TENANTS)
def test_bad_tenant_is_refused(fhir_client: FhirClient, tenant: str) -> None:
    with pytest.raises(FhirInvalidTenant) as caught:
        fhir_client.for_tenant(tenant)
    assert caught.value.status_code == 400
    assert caught.value.code == "fhir_invalid_tenant"


@pytest.mark.parametrize("tenant", ["DEFAULT", "a", "clinic-1", "Clinic_2", "9lives", "a" * 64])
def test_good_tenant_is_accepted(fhir_client: FhirClient, tenant: str) -> None:
    assert fhir_client.for_tenant(tenant).tenant == tenant


@pytest.mark.parametrize("resource_type", BAD_TYPES)
async def test_bad_resource_type_is_refused(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, resource_type: str
) -> None:
    with pytest.raises(FhirInvalidResourceType):
        await tenant_fhir.read(resource_type, "p-1")
    with pytest.raises(FhirInvalidResourceType):
        await tenant_fhir.search(resource_type, {})
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.create(make_patient(resourceType=resource_type))
    assert not hapi.calls


@pytest.mark.parametrize("resource_id", BAD_IDS)
async def test_bad_id_is_refused(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, resource_id: str
) -> None:
    with pytest.raises(FhirInvalidId):
        await tenant_fhir.read("Patient", resource_id)
    with pytest.raises(FhirInvalidId):
        await tenant_fhir.delete("Patient", resource_id)
    with pytest.raises(FhirInvalidId):
        await tenant_fhir.update(make_patient(id=resource_id))
    with pytest.raises(FhirInvalidId):
        await tenant_fhir.vread("Patient", "p-1", resource_id)
    with pytest.raises(FhirInvalidId):
        await tenant_fhir.operation("$everything", resource_type="Patient", resource_id=resource_id)
    assert not hapi.calls


@pytest.mark.parametrize(
    "resource_id",
    ["p-1", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b", "A1", "x" * 64],
)
async def test_good_id_is_accepted(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, resource_id: str
) -> None:
    route = hapi.get(f"{BASE_URL}/DEFAULT/Patient/{resource_id}").respond(
        json=make_patient(id=resource_id)
    )
    await tenant_fhir.read("Patient", resource_id)
    assert route.called


@pytest.mark.parametrize(
    ("name", "expected"),
    [("everything", "$everything"), ("$everything", "$everything"), ("$validate-code", None)],
)
def test_operation_names(name: str, expected: str | None) -> None:
    assert validate_operation(name) == (expected or name)


@pytest.mark.parametrize("name", ["", "$", "$1x", "$a/b", "$a?b", "$../x", "$a b"])
def test_bad_operation_names(name: str) -> None:
    with pytest.raises(FhirInvalidRequest):
        validate_operation(name)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (f"{BASE_URL}/DEFAULT?_getpages=x", (f"{BASE_URL}/DEFAULT", "_getpages=x")),
        ("http://internal:8080/fhir/DEFAULT?_getpages=x", (f"{BASE_URL}/DEFAULT", "_getpages=x")),
        ("https://proxy/fhir/DEFAULT/Patient?a=1", (f"{BASE_URL}/DEFAULT/Patient", "a=1")),
        (f"{BASE_URL}/DEFAULT/", (f"{BASE_URL}/DEFAULT", "")),
    ],
)
def test_page_links_are_reanchored(link: str, expected: tuple[str, str]) -> None:
    assert tenant_page_url(link, base_url=BASE_URL, tenant="DEFAULT") == expected


@pytest.mark.parametrize(
    "link",
    [
        f"{BASE_URL}/OTHER?_getpages=x",
        f"{BASE_URL}/DEFAULTX?_getpages=x",
        "http://internal:8080/other-base/DEFAULT?_getpages=x",
        f"{BASE_URL}/DEFAULT/../OTHER?_getpages=x",
        f"{BASE_URL}/DEFAULT?_getpages=x#frag",
        "javascript:alert(1)",
        "/fhir/DEFAULT?_getpages=x",
    ],
)
def test_page_links_outside_the_tenant_are_refused(link: str) -> None:
    with pytest.raises(FhirInvalidRequest):
        tenant_page_url(link, base_url=BASE_URL, tenant="DEFAULT")


def test_search_condition_and_etag() -> None:
    assert search_condition("?identifier=a|1") == "identifier=a|1"
    assert search_condition({"identifier": "urn:oid:1.2|X Y"}) == "identifier=urn:oid:1.2|X%20Y"
    assert weak_etag("7") == 'W/"7"'
    assert weak_etag('"7"') == 'W/"7"'
    with pytest.raises(FhirInvalidId):
        weak_etag('W/"../7"')
