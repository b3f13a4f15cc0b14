"""Transaction/batch bundle builders and readers."""

from __future__ import annotations

import pytest
from fhir_factories import make_bundle, make_patient

from ehr.fhir import FhirInvalidRequest
from ehr.fhir.bundles import (
    BundleEntry,
    ResourceLocation,
    batch_bundle,
    bundle_resources,
    create_entry,
    delete_entry,
    entry_location,
    has_next,
    iter_entries,
    new_full_url,
    next_link,
    parse_location,
    transaction_bundle,
    update_entry,
)


def test_create_entry_with_urn_and_condition() -> None:
    full_url = new_full_url()
    entry = create_entry(make_patient(), full_url=full_url, if_none_exist={"identifier": "urn:x|1"})
    assert entry["fullUrl"] == full_url
    assert full_url.startswith("urn:uuid:")
    assert entry["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:x|1",
    }
    assert create_entry(make_patient())["fullUrl"].startswith("urn:uuid:")


def test_update_and_delete_entries() -> None:
    entry = update_entry(make_patient(id="p-1"), if_match="2")
    assert entry["request"] == {"method": "PUT", "url": "Patient/p-1", "ifMatch": 'W/"2"'}
    assert delete_entry("Patient", "p-1") == {"request": {"method": "DELETE", "url": "Patient/p-1"}}
    with pytest.raises(FhirInvalidRequest):
        update_entry({"resourceType": "Patient"})
    with pytest.raises(FhirInvalidRequest):
        delete_entry("Patient", "../x")


def test_bundle_types() -> None:
    entries = [create_entry(make_patient())]
    assert transaction_bundle(entries)["type"] == "transaction"
    assert batch_bundle(entries)["type"] == "batch"
    assert transaction_bundle(entries)["entry"] == entries


def test_bundle_resources_filters_by_type() -> None:
    observation = {"resourceType": "Observation", "id": "o-1"}
    bundle = make_bundle([make_patient(id="p-1"), observation])
    assert [r["id"] for r in bundle_resources(bundle)] == ["p-1", "o-1"]
    assert bundle_resources(bundle, "Observation") == [observation]
    assert bundle_resources({"resourceType": "Bundle"}) == []


def test_bundle_resources_of_a_single_resource_and_of_junk() -> None:
    patient = make_patient(id="p-1")
    assert bundle_resources(patient) == [patient]
    assert bundle_resources(patient, "Patient") == [patient]
    assert bundle_resources(patient, "Observation") == []
    assert bundle_resources({"resourceType": "OperationOutcome", "issue": []}) == []
    assert bundle_resources({"entry": [{"resource": patient}]}) == []  # not a resource
    assert bundle_resources(None) == []
    assert bundle_resources([patient]) == []
    junk = make_bundle([patient])
    junk["entry"] += ["x", {"resource": "x"}, {"resource": {"id": "no-type"}}, {}]
    assert bundle_resources(junk) == [patient]
    assert bundle_resources({"resourceType": "Bundle", "entry": "x"}) == []


def test_iter_entries_reads_resource_mode_full_url_and_status() -> None:
    patient = make_patient(id="p-1")
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": patient, "search": {"mode": "match"}},
            {"resource": patient, "search": {"mode": "include"}},
            {"response": {"status": "201 Created", "location": "Patient/p-1/_history/1"}},
            {"response": {"status": "bad"}, "search": "x", "fullUrl": 3},
            "junk",
        ],
    }
    assert list(iter_entries(bundle)) == [
        BundleEntry(patient, "match", "urn:uuid:1", None),
        BundleEntry(patient, "include", None, None),
        BundleEntry(None, None, None, 201),
        BundleEntry(None, None, None, None),
    ]
    matches = [entry.is_match for entry in iter_entries(bundle)]
    assert matches == [True, False, True, True]
    assert list(iter_entries(None)) == []
    assert list(iter_entries({"entry": {"resource": patient}})) == []


def test_next_link_and_has_next() -> None:
    url = "http://h/fhir/DEFAULT?_getpages=x"
    paged = make_bundle([], next_url=url)
    assert next_link(paged) == url
    assert has_next(paged)
    last = make_bundle([])
    assert next_link(last) is None
    assert not has_next(last)
    assert next_link({"link": [{"relation": "next", "url": 3}]}) is None
    assert next_link({"link": ["junk", {"relation": "next", "url": url}]}) == url
    assert next_link({"link": {"relation": "next", "url": url}}) is None
    assert next_link("junk") is None


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("Patient/p-1/_history/1", ResourceLocation("Patient", "p-1", "1")),
        ("http://h/fhir/DEFAULT/Patient/p-1/_history/3", ResourceLocation("Patient", "p-1", "3")),
        ("Patient/p-1", ResourceLocation("Patient", "p-1", None)),
        ("Patient", None),
        (None, None),
    ],
)
def test_entry_location(location: str | None, expected: ResourceLocation | None) -> None:
    entry = {"response": {"status": "201 Created", "location": location}}
    assert entry_location(entry) == expected


def test_parse_location() -> None:
    assert parse_location("http://h/fhir/DEFAULT/Patient/p-1/_history/2") == ResourceLocation(
        "Patient", "p-1", "2"
    )
    assert parse_location("Patient/p-1/") == ResourceLocation("Patient", "p-1", None)
    assert parse_location("p-1") is None
