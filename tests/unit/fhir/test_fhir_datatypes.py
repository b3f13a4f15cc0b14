"""ehr.fhir.datatypes: the typed read accessors are exact on good input and tolerant of junk."""

from __future__ import annotations

import datetime as dt

import pytest

from ehr.fhir import (
    Coding,
    FhirDate,
    Identifier,
    Period,
    ReferenceParts,
    codings,
    concept_text,
    identifiers,
    parse_fhir_date,
    period_of,
    reference_of,
    reference_parts,
    status_code,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
JUNK: list[object] = [None, 1, "text", [], {"coding": "x"}, {"coding": [1, None, "a"]}]

# --- Coding / CodeableConcept ----------------------------------------------------------------


def test_codings_reads_system_code_display() -> None:
    concept = {
        "coding": [
            {"system": RXNORM, "code": " 855332 ", "display": "warfarin 5 MG"},
            {"code": "x-1"},
        ],
        "text": "Warfarin",
    }
    assert codings(concept) == [
        Coding(RXNORM, "855332", "warfarin 5 MG"),
        Coding(None, "x-1", None),
    ]


def test_codings_skips_blank_codes_and_non_string_fields() -> None:
    concept = {
        "coding": [
            {"system": RXNORM, "code": "  "},
            {"system": RXNORM},
            {"system": 5, "code": "a", "display": 7},
            "not a coding",
        ]
    }
    assert codings(concept) == [Coding(None, "a", None)]


def test_codings_limit() -> None:
    concept = {"coding": [{"code": str(i)} for i in range(10)]}
    assert [c.code for c in codings(concept, limit=3)] == ["0", "1", "2"]


@pytest.mark.parametrize("junk", JUNK)
def test_codings_of_junk_is_empty(junk: object) -> None:
    assert codings(junk) == []
    assert status_code(junk) is None


def test_concept_text() -> None:
    assert concept_text({"text": "  Penicillin  "}) == "Penicillin"
    assert concept_text({"text": "   "}) is None
    assert concept_text({"text": 3}) is None
    assert concept_text("Penicillin") is None
    assert concept_text(None) is None


def test_status_code_is_the_first_code() -> None:
    clinical = {"coding": [{"code": ""}, {"system": "s", "code": "active"}, {"code": "x"}]}
    assert status_code(clinical) == "active"
    assert status_code({"coding": []}) is None


# --- Identifier -------------------------------------------------------------------------------


def test_identifiers() -> None:
    patient = {
        "identifier": [
            {"system": "urn:mrn", "value": "M-1"},
            {"value": "no-system"},
            {"system": "urn:mrn"},
            {"system": 3, "value": "odd-system"},
            {"value": 42},
            "junk",
        ]
    }
    assert identifiers(patient) == [
        Identifier("urn:mrn", "M-1"),
        Identifier(None, "no-system"),
        Identifier(None, "odd-system"),
    ]
    assert identifiers({"identifier": "x"}) == []
    assert identifiers(None) == []


# --- Reference --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/p-1", ReferenceParts("Patient", "p-1")),
        ({"reference": "Medication/m.2"}, ReferenceParts("Medication", "m.2")),
        ("http://h/fhir/DEFAULT/Patient/p-1", ReferenceParts("Patient", "p-1")),
        ("Patient/p-1/_history/3", ReferenceParts("Patient", "p-1")),
        ("http://h/fhir/Medication/7/_history/1", ReferenceParts("Medication", "7")),
        ("#med-1", None),
        ({"reference": "#med-1"}, None),
        ("Patient?identifier=urn:x|1", None),
        ("Patient", None),
        ("patient/1", None),
        ("Patient/bad id", None),
        ("Patient/", None),
        ({"display": "Aspirin"}, None),
        (None, None),
        (3, None),
    ],
)
def test_reference_parts(reference: object, expected: ReferenceParts | None) -> None:
    assert reference_parts(reference) == expected


def test_reference_of() -> None:
    assert reference_of({"resourceType": "Observation", "id": "o-1"}) == "Observation/o-1"


# --- dates and periods ------------------------------------------------------------------------


def test_parse_fhir_date_partial_and_full_dates() -> None:
    assert parse_fhir_date("2024") == FhirDate(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert parse_fhir_date("2024-02") == FhirDate(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert parse_fhir_date(" 2024-02-10 ") == FhirDate(dt.date(2024, 2, 10), dt.date(2024, 2, 10))


def test_parse_fhir_date_date_times_are_aware() -> None:
    zoned = parse_fhir_date("2024-03-01T23:30:00+02:00")
    assert zoned is not None
    assert zoned.moment is not None
    assert zoned.first == zoned.last == dt.date(2024, 3, 1)  # the day as written
    assert zoned.moment == dt.datetime(2024, 3, 1, 21, 30, tzinfo=dt.UTC)
    naive = parse_fhir_date("2024-03-01T10:00:00")
    assert naive is not None
    assert naive.moment == dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)
    assert parse_fhir_date("2024-03-01T10:00:00Z") == naive


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2024-13", "2024-02-30", "24-01-01", "2024-01-01 10:00", 2024, None]
)
def test_parse_fhir_date_junk_is_none(value: object) -> None:
    assert parse_fhir_date(value) is None


def test_fhir_date_start_and_has_passed() -> None:
    now = dt.datetime(2025, 3, 15, 12, tzinfo=dt.UTC)
    march = parse_fhir_date("2025-03")
    assert march is not None
    assert march.start == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert not march.has_passed(now)  # still current during March
    february = parse_fhir_date("2025-02")
    assert february is not None
    assert february.has_passed(now)
    earlier = parse_fhir_date("2025-03-15T11:59:00Z")
    assert earlier is not None
    assert earlier.has_passed(now)
    assert earlier.start == earlier.moment


def test_period_of_and_has_ended() -> None:
    now = dt.datetime(2025, 3, 15, 12, tzinfo=dt.UTC)
    period = period_of({"start": "2025-01-01", "end": "2025-03-14"})
    assert period == Period(parse_fhir_date("2025-01-01"), parse_fhir_date("2025-03-14"))
    assert period.has_ended(now)
    assert not Period(None, parse_fhir_date("2025-03-15")).has_ended(now)
    assert not period_of({"start": "2025-01-01"}).has_ended(now)  # type: ignore[union-attr]
    assert not period_of({"end": "soon"}).has_ended(now)  # type: ignore[union-attr]
    assert period_of("2025") is None
    assert period_of(None) is None


def test_versions_etags_and_if_match_values() -> None:
    from ehr.fhir import bare_version, etag_of, version_id

    stored = {"resourceType": "Condition", "meta": {"versionId": "3"}}
    assert version_id(stored) == "3"
    assert etag_of(stored) == 'W/"3"'
    assert version_id({"resourceType": "Condition"}) is None
    assert etag_of({"meta": {"versionId": 3}}) is None  # not a FHIR id string
    assert [bare_version(v) for v in ("3", '"3"', 'W/"3"', ' W/"3" ')] == ["3"] * 4
