"""Prefetch from a CDS client's own FHIR server (``RemoteFhirSource`` over ``ExternalFhirServer``):
404/410 are "no data", every other failure is a 412 saying why, paging stays under the base."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from ehr.core.errors import PreconditionFailed
from ehr.modules.cds_hooks.prefetch import RemoteFhirSource

BASE = "https://fhir.example.test/r4"
PATIENT = {"resourceType": "Patient", "id": "1"}


@pytest.fixture
async def source() -> AsyncIterator[RemoteFhirSource]:
    remote = RemoteFhirSource(BASE, "lent-token", timeout_seconds=2)
    yield remote
    await remote.aclose()


def _next(url: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "link": [{"relation": "next", "url": url}]}


@respx.mock
async def test_a_read_carries_the_token_and_a_search_its_parameters(
    source: RemoteFhirSource,
) -> None:
    respx.get(
        f"{BASE}/Patient/1",
        headers={"Authorization": "Bearer lent-token", "Accept": "application/fhir+json"},
    ).mock(return_value=httpx.Response(200, json=PATIENT))
    respx.get(
        f"{BASE}/Observation", params={"patient": "1", "code": "http://loinc.org|4548-4"}
    ).mock(return_value=httpx.Response(200, json={"resourceType": "Bundle"}))
    assert await source.get("Patient/1") == PATIENT
    assert await source.get("Observation?patient=1&code=http://loinc.org|4548-4") == {
        "resourceType": "Bundle"
    }


@pytest.mark.parametrize("status", [404, 410])
@respx.mock
async def test_not_found_or_gone_is_no_data(source: RemoteFhirSource, status: int) -> None:
    respx.get(url__startswith=BASE).mock(return_value=httpx.Response(status))
    assert await source.get("Patient/1") is None
    assert await source.next_page(_next(f"{BASE}/?page=2")) is None


@pytest.mark.parametrize("status", [201, 204, 302, 400, 401, 403, 409, 412, 422, 429, 500, 503])
@respx.mock
async def test_any_other_status_is_a_412_naming_it(source: RemoteFhirSource, status: int) -> None:
    respx.get(url__startswith=BASE).mock(return_value=httpx.Response(status, json=PATIENT))
    with pytest.raises(PreconditionFailed, match=f"answered {status};"):
        await source.get("Patient/1")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, content=b"<html>"), "did not answer with FHIR JSON"),
        (httpx.Response(200, json=[PATIENT]), "did not answer with FHIR JSON"),
        (
            httpx.Response(200, content=b"{" + b" " * (8 * 1024 * 1024) + b"}"),
            "sent more data than this service reads",
        ),
        (httpx.ConnectError("refused"), "could not be reached"),
        (httpx.ReadTimeout("slow"), "could not be reached"),
    ],
)
@respx.mock
async def test_unusable_answers_are_a_412(
    source: RemoteFhirSource, answer: httpx.Response | Exception, message: str
) -> None:
    route = respx.get(url__startswith=BASE)
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    with pytest.raises(PreconditionFailed, match=message):
        await source.get("Patient/1")


@pytest.mark.parametrize(
    "link", ["https://elsewhere.test/r4/?page=2", "https://fhir.example.test/other?page=2"]
)
@respx.mock
async def test_a_paging_link_off_the_base_is_not_followed(
    source: RemoteFhirSource, link: str
) -> None:
    route = respx.get(url__startswith="https://").mock(
        return_value=httpx.Response(200, json={"resourceType": "Bundle"})
    )
    assert await source.next_page(_next(link)) is None
    assert not route.called
    assert await source.next_page(_next(f"{BASE}/?page=2")) == {"resourceType": "Bundle"}
    assert route.call_count == 1
