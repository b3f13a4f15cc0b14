"""ehr.fhir.paging: TenantFhirClient.search_all follows HAPI's pages, bounded (respx as HAPI)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from fhir_factories import TENANT_BASE, make_bundle, make_patient

from ehr.fhir import SearchResult, TenantFhirClient, follow_pages, search_result, with_page_size


def _page(resources: list[dict[str, Any]], page: int | None) -> dict[str, Any]:
    next_url = f"{TENANT_BASE}?_getpages=p&_getpagesoffset={page}" if page else None
    return make_bundle(resources, next_url=next_url)


def _pages_route(hapi: respx.MockRouter, pages: list[dict[str, Any]]) -> respx.Route:
    """The first page answers the search; page ``n`` answers ``_getpagesoffset=n``."""
    hapi.get(f"{TENANT_BASE}/MedicationRequest").respond(json=pages[0])

    def later(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[int(request.url.params["_getpagesoffset"])])

    return hapi.get(TENANT_BASE).mock(side_effect=later)


def _order(order_id: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": order_id, "status": "active"}


def _included(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "search": {"mode": "include"}}


async def test_search_all_reads_every_page_and_splits_includes(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    medication = {"resourceType": "Medication", "id": "m-1"}
    first = _page([_order("o-1")], 1)
    first["entry"].append(_included(medication))
    pages = [first, _page([_order("o-2")], 2), _page([_order("o-3")], None)]
    later = _pages_route(hapi, pages)

    found = await tenant_fhir.search_all(
        "MedicationRequest",
        [("subject", "Patient/p-1"), ("_include", "MedicationRequest:medication")],
        page_size=2,
        max_pages=5,
    )

    assert [r["id"] for r in found.matches] == ["o-1", "o-2", "o-3"]
    assert found.included == {"Medication/m-1": medication}
    assert found.complete
    assert later.call_count == 2
    search = hapi.routes[0].calls.last.request.url.params
    assert search.multi_items() == [
        ("subject", "Patient/p-1"),
        ("_include", "MedicationRequest:medication"),
        ("_count", "2"),
    ]


async def test_search_all_stops_at_max_pages_and_says_incomplete(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    pages = [_page([_order(f"o-{i}")], i + 1) for i in range(4)]
    later = _pages_route(hapi, pages)
    found = await tenant_fhir.search_all("MedicationRequest", {"status": "active"}, max_pages=3)
    assert [r["id"] for r in found.matches] == ["o-0", "o-1", "o-2"]
    assert not found.complete
    assert later.call_count == 2
    assert "_count" not in hapi.routes[0].calls.last.request.url.params


async def test_search_all_last_page_exactly_at_the_bound_is_complete(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    _pages_route(hapi, [_page([_order("o-1")], 1), _page([_order("o-2")], None)])
    found = await tenant_fhir.search_all("MedicationRequest", max_pages=2)
    assert found.complete
    assert len(found.matches) == 2


async def test_search_all_of_nothing(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    hapi.get(f"{TENANT_BASE}/MedicationRequest").respond(json=make_bundle())
    assert await tenant_fhir.search_all("MedicationRequest", max_pages=1) == SearchResult()


def test_search_result_keeps_other_types_as_included_and_skips_junk() -> None:
    patient = make_patient(id="p-1")
    page = make_bundle([_order("o-1"), patient])
    page["entry"] += [
        {"resource": {"resourceType": "Medication"}},  # no id: nowhere to file it
        {"search": {"mode": "match"}},  # no resource
        "junk",
    ]
    found = search_result([page], "MedicationRequest", complete=True)
    assert [r["id"] for r in found.matches] == ["o-1"]
    assert found.included == {"Patient/p-1": patient}


async def test_follow_pages_without_a_source_is_incomplete_when_a_next_link_exists() -> None:
    first = _page([], 1)
    assert await follow_pages(first, None, max_pages=5) == ([first], False)
    last = _page([], None)
    assert await follow_pages(last, None, max_pages=5) == ([last], True)


async def test_follow_pages_ends_where_the_source_refuses_a_link() -> None:
    first = _page([], 1)

    async def refuse(bundle: Any) -> dict[str, Any] | None:
        return None

    assert await follow_pages(first, refuse, max_pages=5) == ([first], True)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, [("_count", "50")]),
        ("", "_count=50"),
        ("a=1", "a=1&_count=50"),
        ([("a", "1")], [("a", "1"), ("_count", "50")]),
        ({"a": "1", "b": ["2", "3"]}, [("a", "1"), ("b", "2"), ("b", "3"), ("_count", "50")]),
    ],
)
def test_with_page_size(params: Any, expected: Any) -> None:
    assert with_page_size(params, 50) == expected
    assert with_page_size(params, None) == params
