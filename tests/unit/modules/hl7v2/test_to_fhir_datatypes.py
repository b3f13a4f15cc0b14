"""v2 datatypes -> FHIR datatypes: identifier systems, dates and times, codes, contact points."""

from __future__ import annotations

import pytest
from test_to_fhir_builders import convert, message, msh, pid, resource_of, segment

from ehr.modules.hl7v2.parsing import Repetition
from ehr.modules.hl7v2.to_fhir import ConversionError, identifier_system
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, without_empty
from ehr.modules.hl7v2.to_fhir.conversion import ConversionContext
from ehr.modules.hl7v2.to_fhir.datatypes import codeable_concept, contact_point, quantity
from ehr.modules.hl7v2.to_fhir.datetimes import parse_dtm
from ehr.modules.hl7v2.to_fhir.identifiers import search_token


def rep(*components: str) -> Repetition:
    return Repetition(tuple(tuple(component.split("&")) for component in components))


def assembly(timestamp: str = "20250101120000-0500") -> Assembly:
    from test_to_fhir_builders import MESSAGE_ID, RECEIVED_AT

    return Assembly(
        message(msh("ADT^A01", timestamp=timestamp), pid()),
        ConversionContext(message_id=MESSAGE_ID, received_at=RECEIVED_AT, tenant="acme"),
    )


@pytest.mark.parametrize(
    ("hd", "system"),
    [
        (("HOSP", "1.2.3.4", "ISO"), "urn:oid:1.2.3.4"),
        (("", "6B29FC40-CA47-1067-B31D-00DD010662DA", "UUID"),
         "urn:uuid:6b29fc40-ca47-1067-b31d-00dd010662da"),
        (("X", "https://id.example.org/mrn", "URI"), "https://id.example.org/mrn"),
        (("REDDING HOSPITAL", "1.1.1.1", "GUID"), "urn:ehr:hl7v2:REDDING%20HOSPITAL"),
        (("MSH_MRN", "", ""), "urn:ehr:hl7v2:MSH_MRN"),
        (("A/B|C", "", ""), "urn:ehr:hl7v2:A%2FB%7CC"),
        (("HOSP", "not-an-oid", "ISO"), "urn:ehr:hl7v2:HOSP"),
        (("", "", ""), None),
    ],
)  # fmt: skip
def test_identifier_system(hd: tuple[str, str, str], system: str | None) -> None:
    assert identifier_system(*hd) == system


def test_search_token_is_escaped_and_encoded() -> None:
    assert search_token("urn:ehr:hl7v2:GHH%20OE", "a,b c") == (
        "urn:ehr:hl7v2:GHH%2520OE|a%5C%2Cb%20c"
    )


@pytest.mark.parametrize(
    ("raw", "date_time"),
    [
        ("2025", "2025"),
        ("202503", "2025-03"),
        ("20250304", "2025-03-04"),
        ("2025030412", "2025-03-04T12:00:00-05:00"),
        ("202503041230", "2025-03-04T12:30:00-05:00"),
        ("20250304123045.1234-0800", "2025-03-04T12:30:45.1234-08:00"),
        ("20250304123045+0000", "2025-03-04T12:30:45Z"),
    ],
)
def test_date_times_keep_precision_and_take_the_message_zone(raw: str, date_time: str) -> None:
    assert assembly().date_time(raw, "X-1") == date_time


def test_time_without_any_zone_is_utc() -> None:
    assert assembly("20250101120000").date_time("202503041230", "X-1") == "2025-03-04T12:30:00Z"


@pytest.mark.parametrize("raw", ["20251345", "20250230", "2025010125", "196203520", "2025-01-01"])
def test_impossible_dates_raise(raw: str) -> None:
    with pytest.raises(ConversionError) as raised:
        parse_dtm(raw, "PID-7")
    assert raised.value.location == "PID-7"
    assert assembly().date_time(raw, "X-1", strict=False) is None


def test_codeable_concept_systems() -> None:
    scope = assembly()
    loinc = codeable_concept(rep("2345-7", "Glucose", "LN", "GLU", "Glucose", "99LAB"), scope)
    assert without_empty(loinc) == {
        "coding": [
            {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"},
            {
                "system": "urn:ehr:hl7v2:GOODHEALTH:codesystem:99LAB",
                "code": "GLU",
                "display": "Glucose",
            },
        ],
    }
    for name, uri in [
        ("SCT", "http://snomed.info/sct"),
        ("SNM", "http://snomed.info/sct"),
        ("I10", "http://hl7.org/fhir/sid/icd-10"),
        ("I10C", "http://hl7.org/fhir/sid/icd-10-cm"),
        ("CVX", "http://hl7.org/fhir/sid/cvx"),
        ("RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        ("RXN", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        ("HL70203", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    ]:
        concept = codeable_concept(rep("MR" if name == "HL70203" else "C1", "", name), scope)
        assert concept is not None
        assert concept["coding"][0]["system"] == uri
    # A code that is not one of the HL7 table's (as the IG's sheets list them) is the sender's.
    local = codeable_concept(rep("C1", "", "HL70203"), scope)
    assert local is not None
    assert local["coding"][0]["system"] == "urn:ehr:hl7v2:GOODHEALTH:codesystem:HL70203"
    text_only = codeable_concept(rep("", "Free text"), scope)
    assert text_only == {"coding": [], "text": "Free text"}


def test_contact_points() -> None:
    scope = assembly()
    mobile = contact_point(rep("", "PRS", "CP", "", "1", "555", "1234567"), scope, "PID-13")
    assert without_empty(mobile) == {"system": "phone", "value": "+1 555 1234567", "use": "mobile"}
    old_style = contact_point(rep("(555)123-4567"), scope, "PID-13", default_use="home")
    assert without_empty(old_style) == {"system": "phone", "value": "(555)123-4567", "use": "home"}


def test_quantity_units() -> None:
    scope = assembly()
    assert quantity(5, rep("mmol/L", "", "UCUM"), scope)["code"] == "mmol/L"
    assert quantity(5, rep("K/uL"), scope) == {
        "value": 5,
        "unit": "K/uL",
        "system": "http://unitsofmeasure.org",
        "code": "10*3/uL",
    }
    assert quantity(5, rep("widgets"), scope) == {"value": 5, "unit": "widgets"}


def test_version_2_3_style_fields() -> None:
    # 2.3: CE instead of CWE, TS with precision component, IS gender, XPN without type
    conversion = convert(
        message(
            msh("ADT^A08", version="2.3"),
            segment(
                "PID",
                {3: "77^^^^MR", 5: "ROE^RICHARD", 7: "19700101^D", 8: "M", 15: "en^English^ISO639"},
            ),
        )
    )
    patient = resource_of(conversion, "Patient")
    assert patient["birthDate"] == "1970-01-01"
    assert patient["gender"] == "male"
    assert patient["communication"][0]["language"]["coding"][0] == {
        "system": "urn:ietf:bcp:47",
        "code": "en",
    }
    assert conversion.patient_identifier == "urn:ehr:hl7v2:GOODHEALTH|77"


def test_entity_identifiers_with_the_authority_written_as_one_hd() -> None:
    from ehr.modules.hl7v2.to_fhir.datatypes import identifier_from_ei

    scope = assembly()
    sent_as_hd = identifier_from_ei(
        rep("3738931392", "REDDING HOSPITAL&1.1.1.1&ISO"), scope, "TXA-12"
    )
    standard = identifier_from_ei(rep("ORD777999", "SndFac", "1.2.3.4.5", "ISO"), scope, "ORC-2")
    bare = identifier_from_ei(rep("A1"), scope, "ORC-2")
    assert sent_as_hd == {"type": None, "system": "urn:oid:1.1.1.1", "value": "3738931392"}
    assert standard is not None
    assert standard["system"] == "urn:oid:1.2.3.4.5"
    assert bare is not None
    assert bare["system"] == "urn:ehr:hl7v2:GOODHEALTH"
