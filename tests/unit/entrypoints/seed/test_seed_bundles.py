"""The demo data: five synthetic patients, one conditional-create transaction each."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from ehr.core.config import FhirSettings
from ehr.entrypoints.seed import DEMO_MRN_SYSTEM, seed_demo_data
from ehr.entrypoints.seed.demo import DEMO_TAG, LOINC, RXNORM, SNOMED, UCUM, demo_patient_bundles
from ehr.fhir import FhirClient

BASE = "http://hapi.seed.test/fhir"


def _codings(resource: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = resource[key]
    return list(value["coding"])


def test_five_patients_one_transaction_each() -> None:
    bundles = demo_patient_bundles()
    assert len(bundles) == 5
    mrns = set()
    for bundle in bundles:
        assert bundle["type"] == "transaction"
        patients = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
        assert len(patients) == 1
        identifier = patients[0]["resource"]["identifier"][0]
        assert identifier["system"] == DEMO_MRN_SYSTEM
        mrns.add(identifier["value"])
        types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        for kind in ("Encounter", "Condition", "Observation", "MedicationRequest"):
            assert types[kind] >= 1, kind
    assert len(mrns) == 5
    allergies = sum(
        1
        for bundle in bundles
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "AllergyIntolerance"
    )
    assert allergies >= 4


def test_every_entry_is_a_conditional_create_on_a_demo_identifier() -> None:
    for bundle in demo_patient_bundles():
        patient_url = bundle["entry"][0]["fullUrl"]
        assert patient_url.startswith("urn:uuid:")
        for entry in bundle["entry"]:
            resource = entry["resource"]
            identifier = resource["identifier"][0]
            assert identifier["system"].startswith("urn:ehr:demo:")
            assert entry["request"] == {
                "method": "POST",
                "url": resource["resourceType"],
                "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}",
            }
            assert DEMO_TAG in resource["meta"]["tag"]
            subject = resource.get("subject") or resource.get("patient")
            if resource["resourceType"] != "Patient":
                assert subject == {"reference": patient_url}


def test_codes_use_standard_terminologies() -> None:
    for bundle in demo_patient_bundles():
        for entry in bundle["entry"]:
            resource = entry["resource"]
            kind = resource["resourceType"]
            if kind in ("Condition", "AllergyIntolerance"):
                assert _codings(resource, "code")[0]["system"] == SNOMED
            elif kind == "Observation":
                assert _codings(resource, "code")[0]["system"] == LOINC
                quantity = resource["valueQuantity"]
                assert quantity["system"] == UCUM
                assert quantity["code"]
            elif kind == "MedicationRequest":
                assert _codings(resource, "medicationCodeableConcept")[0]["system"] == RXNORM


def test_names_are_obviously_synthetic() -> None:
    families = {
        e["resource"]["name"][0]["family"]
        for bundle in demo_patient_bundles()
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
    }
    assert families == {"Synthetica", "Fictus", "Exemplar", "Placeholder", "Mockwell"}


def test_extra_tags_are_added_to_every_resource() -> None:
    tag = {"system": "urn:ehr:test", "code": "run-1"}
    for bundle in demo_patient_bundles([tag]):
        for entry in bundle["entry"]:
            assert tag in entry["resource"]["meta"]["tag"]


@pytest.fixture
def hapi() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as router:
        yield router


async def test_seed_reports_created_and_existing_entries(hapi: respx.MockRouter) -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        status = "201 Created" if not calls else "200 OK"
        calls.append(1)
        return httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [{"response": {"status": status}} for _ in bundle["entry"]],
            },
        )

    hapi.post(f"{BASE}/DEFAULT").mock(side_effect=answer)
    async with FhirClient(FhirSettings(base_url=BASE)) as fhir:
        report = await seed_demo_data(fhir.for_tenant("DEFAULT"))
    assert report.patients == 5
    assert report.created["Patient"] == 1
    assert report.existing["Patient"] == 4
    assert len(calls) == 5
    assert report.as_dict()["tenant"] == "DEFAULT"
