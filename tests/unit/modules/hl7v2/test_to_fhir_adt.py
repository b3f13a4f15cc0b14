"""ADT -> Patient / Encounter / RelatedPerson / AllergyIntolerance / Condition, MessageHeader
and Provenance."""

from __future__ import annotations

import pytest
from test_to_fhir_builders import (
    MESSAGE_ID,
    convert,
    empties,
    entries,
    entry_of,
    message,
    msh,
    pid,
    pv1,
    resource_of,
    segment,
)

from ehr.modules.hl7v2.parsing import Message
from ehr.modules.hl7v2.to_fhir import SUPPORTED_EVENTS, Conversion, ConversionError

PATIENT_SYSTEM = "urn:oid:1.2.840.114350"
VISIT_SYSTEM = "urn:oid:2.16.840.1.113883.3.999"


def adt(trigger: str, *segments: str) -> Message:
    return message(msh(f"ADT^{trigger}^ADT_A01"), segment("EVN", {1: trigger}), *segments)


def test_patient_from_pid() -> None:
    conversion = convert(adt("A01", pid(), pv1()))
    entry = entry_of(conversion, "Patient")
    patient = entry["resource"]

    assert entry["request"] == {
        "method": "PUT",
        "url": f"Patient?identifier={PATIENT_SYSTEM}|MRN123",
    }
    assert conversion.patient_identifier == f"{PATIENT_SYSTEM}|MRN123"
    mrn, ssn = patient["identifier"]
    assert mrn["system"] == PATIENT_SYSTEM
    assert mrn["value"] == "MRN123"
    assert mrn["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
        "code": "MR",
        "display": "Medical record number",
    }
    assert ssn["system"] == "http://hl7.org/fhir/sid/us-ssn"
    official, maiden = patient["name"]
    assert official == {
        "use": "official",
        "family": "DOE",
        "given": ["JANE", "Q"],
        "prefix": ["DR"],
    }
    assert maiden["use"] == "maiden"
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1980-02-15"
    assert patient["address"] == [
        {
            "use": "home",
            "line": ["1 MAIN ST", "APT 2"],
            "city": "SPRINGFIELD",
            "state": "IL",
            "postalCode": "62701",
            "country": "USA",
        }
    ]
    assert patient["telecom"] == [
        {"system": "phone", "value": "+1 217 5551234", "use": "home"},
        {"system": "email", "value": "jane@example.org"},
        {"system": "phone", "value": "(217)555-9999", "use": "work"},
    ]
    assert patient["maritalStatus"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    )


def test_identifier_without_assigning_authority_takes_the_sending_facility() -> None:
    conversion = convert(adt("A04", pid({3: "4711"}), pv1()))
    assert conversion.patient_identifier == "urn:ehr:hl7v2:GOODHEALTH|4711"


def test_explicit_null_clears_and_nothing_empty_is_written() -> None:
    conversion = convert(
        adt("A08", pid({8: '""', 11: '""', 16: '""', 13: '""', 14: '""'}), pv1({7: '""'}))
    )
    patient = resource_of(conversion, "Patient")
    for element in ("gender", "address", "maritalStatus", "telecom"):
        assert element not in patient
    assert empties(conversion.bundle) == []
    assert "participant" not in resource_of(conversion, "Encounter")


def test_encounter_from_pv1() -> None:
    conversion = convert(adt("A01", pid(), pv1()))
    entry = entry_of(conversion, "Encounter")
    encounter = entry["resource"]
    patient_url = entry_of(conversion, "Patient")["fullUrl"]

    assert entry["request"]["url"] == f"Encounter?identifier={VISIT_SYSTEM}|V100"
    assert encounter["identifier"][0]["type"]["coding"][0]["code"] == "VN"
    assert encounter["status"] == "in-progress"
    assert encounter["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "IMP",
        "display": "inpatient encounter",
    }
    assert encounter["subject"] == {"reference": patient_url}
    # MSH-7 is -0500: the admit time without a zone takes it
    assert encounter["period"] == {"start": "2025-01-01T10:00:00-05:00"}
    attender = encounter["participant"][0]
    assert attender["type"][0]["coding"][0]["code"] == "ATND"
    practitioner = entry_of(conversion, "Practitioner")
    assert attender["individual"]["reference"] == practitioner["fullUrl"]
    assert practitioner["request"] == {  # reference data: created if unknown, never overwritten
        "method": "POST",
        "url": "Practitioner",
        "ifNoneExist": "identifier=http://hl7.org/fhir/sid/us-npi|1234",
    }
    bed = next(
        e
        for e in entries(conversion, "Location")
        if e["resource"]["identifier"][0]["value"] == "4N^401^A"
    )
    assert encounter["location"][0] == {
        "location": {"reference": bed["fullUrl"], "display": "4N^401^A"},
        "status": "active",
    }
    room = bed["resource"]["partOf"]["reference"]
    assert any(e["fullUrl"] == room for e in entries(conversion, "Location"))


@pytest.mark.parametrize(
    ("trigger", "status"),
    [
        ("A01", "in-progress"),
        ("A02", "in-progress"),
        ("A03", "finished"),
        ("A04", "in-progress"),
        ("A05", "planned"),
        ("A06", "in-progress"),
        ("A07", "in-progress"),
        ("A11", "cancelled"),
        ("A13", "in-progress"),
    ],
)
def test_encounter_status_by_event(trigger: str, status: str) -> None:
    conversion = convert(adt(trigger, pid(), pv1({45: "20250103090000"})))
    encounter = resource_of(conversion, "Encounter")
    assert encounter["status"] == status
    if trigger == "A13":
        assert "end" not in encounter["period"]  # cancel discharge: the stay goes on


def test_a08_status_follows_pv1() -> None:
    discharged = convert(adt("A08", pid(), pv1({45: "20250103090000"})))
    assert resource_of(discharged, "Encounter")["status"] == "finished"
    preadmit = convert(adt("A08", pid(), pv1({2: "P"})))
    assert resource_of(preadmit, "Encounter")["status"] == "planned"


def test_visit_without_number_is_keyed_on_patient_and_admit_time() -> None:
    first = convert(adt("A01", pid(), pv1({19: ""})))
    again = convert(adt("A03", pid(), pv1({19: "", 45: "20250102"})))
    url = entry_of(first, "Encounter")["request"]["url"]
    assert url.startswith("Encounter?identifier=urn:ehr:hl7v2:visit|")
    assert entry_of(again, "Encounter")["request"]["url"] == url


def test_discharge_without_any_visit_key_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        convert(adt("A03", pid(), pv1({19: "", 44: ""})))
    assert raised.value.location == "PV1-19"


def test_person_events_write_no_encounter() -> None:
    for trigger in ("A28", "A31"):
        conversion = convert(adt(trigger, pid(), pv1({2: "N"})))
        assert entries(conversion, "Encounter") == []
        assert conversion.summary["Patient"] == 1


def test_invalid_birth_date_is_refused_with_its_location_only() -> None:
    with pytest.raises(ConversionError) as raised:
        convert(adt("A01", pid({7: "20251345"}), pv1()))
    assert raised.value.location == "PID-7"
    assert "20251345" not in str(raised.value)


def test_birth_time_and_zones() -> None:
    conversion = convert(
        adt("A01", pid({7: "198002151230"}), pv1({44: "20250101100000.1234+0100"}))
    )
    patient = resource_of(conversion, "Patient")
    assert patient["birthDate"] == "1980-02-15"
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1980-02-15T12:30:00-05:00"
    assert resource_of(conversion, "Encounter")["period"]["start"] == (
        "2025-01-01T10:00:00.1234+01:00"
    )


def test_next_of_kin_allergy_and_diagnosis() -> None:
    conversion = convert(
        adt(
            "A01",
            pid(),
            segment(
                "NK1", {1: "1", 2: "DOE^JOHN", 3: "SPO^Spouse^HL70063", 5: "^PRN^PH^^^217^5550000"}
            ),
            pv1(),
            segment("AL1", {1: "1", 2: "DA", 3: "70618^Penicillin^RXNORM", 4: "SV", 5: "Hives"}),
            segment("DG1", {1: "1", 3: "I10.9^Hypertension^I10C", 6: "A"}),
        )
    )
    patient_url = entry_of(conversion, "Patient")["fullUrl"]
    person = resource_of(conversion, "RelatedPerson")
    assert person["patient"] == {"reference": patient_url}
    assert person["relationship"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
        "code": "SPS",
        "display": "spouse",
    }
    allergy = resource_of(conversion, "AllergyIntolerance")
    assert allergy["category"] == ["medication"]
    assert allergy["criticality"] == "high"
    assert allergy["code"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert allergy["reaction"] == [{"manifestation": [{"text": "Hives"}]}]
    condition = entry_of(conversion, "Condition")
    assert (
        condition["resource"]["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    )
    diagnosis = resource_of(conversion, "Encounter")["diagnosis"][0]
    assert diagnosis["condition"] == {"reference": condition["fullUrl"]}
    assert diagnosis["use"]["coding"][0]["code"] == "AD"


def test_merge_links_survivor_and_replaced_patient() -> None:
    conversion = convert(
        message(
            msh("ADT^A40^ADT_A39"),
            segment("EVN", {1: "A40"}),
            pid(),
            segment("MRG", {1: "OLD9^^^HOSP&1.2.840.114350&ISO^MR", 7: "DOE^JAYNE"}),
        )
    )
    survivor, old = entries(conversion, "Patient")
    assert old["request"]["url"] == f"Patient?identifier={PATIENT_SYSTEM}|OLD9"
    assert old["resource"]["active"] is False
    assert old["resource"]["link"] == [
        {"other": {"reference": survivor["fullUrl"]}, "type": "replaced-by"}
    ]
    assert survivor["resource"]["link"] == [
        {"other": {"reference": old["fullUrl"]}, "type": "replaces"}
    ]
    assert conversion.patient_identifier == f"{PATIENT_SYSTEM}|MRN123"


def test_merge_into_itself_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        convert(
            message(
                msh("ADT^A40^ADT_A39"),
                pid(),
                segment("MRG", {1: "MRN123^^^HOSP&1.2.840.114350&ISO^MR"}),
            )
        )
    assert raised.value.location == "MRG-1"


def test_message_header_and_provenance() -> None:
    conversion = convert(adt("A01", pid(), pv1()))
    header_entry = entry_of(conversion, "MessageHeader")
    provenance_entry = entry_of(conversion, "Provenance")
    header, provenance = header_entry["resource"], provenance_entry["resource"]

    # HAPI assigns ids itself: the message's own resources are keyed on a tag of its inbox id
    tag = f"urn:ehr:hl7v2:message|v2-{MESSAGE_ID}"
    assert header_entry["request"] == {"method": "PUT", "url": f"MessageHeader?_tag={tag}"}
    assert header["meta"]["tag"] == [
        {"system": "urn:ehr:hl7v2:message", "code": f"v2-{MESSAGE_ID}"}
    ]
    assert "id" not in header
    assert header["eventCoding"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0003",
        "code": "A01",
        "display": "ADT^A01^ADT_A01",
    }
    assert header["source"]["name"] == "REG"
    assert header["destination"][0]["name"] == "EHR"
    focus = {ref["reference"] for ref in header["focus"]}
    assert focus == {
        entry_of(conversion, "Patient")["fullUrl"],
        entry_of(conversion, "Encounter")["fullUrl"],
    }

    assert provenance_entry["request"] == {"method": "PUT", "url": f"Provenance?_tag={tag}"}
    others = {e["fullUrl"] for e in conversion.bundle["entry"]} - {provenance_entry["fullUrl"]}
    assert {ref["reference"] for ref in provenance["target"]} == others
    assert provenance["recorded"] == "2025-03-04T05:06:07.000Z"
    assert provenance["activity"]["coding"][0]["code"] == "UPDATE"
    assert provenance["agent"][0]["who"] == {"display": "REG"}
    assert provenance["entity"][0]["role"] == "source"
    assert provenance["entity"][0]["what"]["identifier"] == {
        "system": "urn:ehr:hl7v2:control-id:REG",
        "value": "CTRL0001",
    }
    assert conversion.summary == {
        "Patient": 1,
        "Practitioner": 1,
        "Location": 3,
        "Encounter": 1,
        "MessageHeader": 1,
        "Provenance": 1,
    }


def test_resend_gives_the_same_keys_and_placeholders() -> None:
    first = convert(adt("A01", pid(), pv1()))
    resent = convert(
        message(msh("ADT^A01^ADT_A01", control_id="CTRL0002"), pid(), pv1()),
        message_id="0" * 32,
    )

    def keyed(conversion: Conversion) -> list[tuple[str, str]]:
        return [
            (e["fullUrl"], e["request"]["url"])
            for e in conversion.bundle["entry"]
            if e["resource"]["resourceType"] not in {"MessageHeader", "Provenance"}
        ]

    assert keyed(first) == keyed(resent)


def test_unsupported_event_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        convert(message(msh("QRY^A19"), pid()))
    assert raised.value.location == "MSH-9"
    assert "ACK" not in {event.split("_")[0] for event in SUPPORTED_EVENTS}
