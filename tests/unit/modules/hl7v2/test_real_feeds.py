"""Messages in the styles real interfaces send (``real_feed_messages``): parsing and the v2 ->
FHIR mapping give the values the IG's mappings say, and the fixes for what real feeds broke
stay fixed (continuation TX lines, sender codes under HL7 table names, result feeds listing the
lab's id before the MRN, python-hl7's unescaping, MSH-2 with a truncation character)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import real_feed_messages as feeds
from test_to_fhir_builders import convert, empties, entries, entry_of, resource_of

from ehr.modules.hl7v2.parsing import parse_message
from ehr.modules.hl7v2.to_fhir import Conversion

V2 = "http://terminology.hl7.org/CodeSystem/v2-"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def run(raw: str | bytes) -> Conversion:
    return convert(parse_message(raw))


def by_identifier(conversion: Conversion, resource_type: str, value: str) -> dict[str, Any]:
    found = [
        entry["resource"]
        for entry in entries(conversion, resource_type)
        if any(i.get("value") == value for i in entry["resource"].get("identifier", []))
    ]
    assert len(found) == 1, f"{len(found)} {resource_type} with identifier {value}"
    return found[0]


def observation(conversion: Conversion, key: str) -> dict[str, Any]:
    return by_identifier(conversion, "Observation", key)


ALL = {
    "adt_a01_epic": feeds.adt_a01_epic,
    "adt_a08_authorities": feeds.adt_a08_authorities,
    "adt_a40_merge": feeds.adt_a40_merge,
    "adt_a04_latin1": feeds.adt_a04_latin1,
    "adt_a03_cerner_lf": feeds.adt_a03_cerner_lf,
    "oru_lab": feeds.oru_lab,
    "oru_continuation_lines": feeds.oru_continuation_lines,
    "oru_long": feeds.oru_long,
    "orm_o01": feeds.orm_o01,
    "oml_o21": feeds.oml_o21,
    "siu": feeds.siu,
    "vxu_v04": feeds.vxu_v04,
    "mdm_t02": feeds.mdm_t02,
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_message_converts_without_empty_elements(name: str) -> None:
    conversion = run(ALL[name]())
    for entry in conversion.bundle["entry"]:
        assert empties(entry["resource"]) == [], entry["request"]


# ----------------------------------------------------------------------------- ADT


def test_epic_a01_patient() -> None:
    conversion = run(feeds.adt_a01_epic())
    entry = entry_of(conversion, "Patient")
    assert entry["request"] == {
        "method": "PUT",
        "url": "Patient?identifier=urn:ehr:hl7v2:EPI|E1234567",
    }
    patient = entry["resource"]
    assert [(i["system"], i["value"]) for i in patient["identifier"]] == [
        ("urn:ehr:hl7v2:EPI", "E1234567"),
        ("http://hl7.org/fhir/sid/us-ssn", "100200300"),
        ("urn:ehr:hl7v2:MERCY", "MCR555"),
    ]
    assert patient["name"][0] == {
        "use": "official", "family": "TESTPATIENT", "given": ["ALICE", "MARIE"], "suffix": ["JR"]
    }  # fmt: skip
    assert patient["name"][1]["use"] == "nickname"
    assert patient["birthDate"] == "1975-07-04"
    assert patient["gender"] == "female"
    assert patient["deceasedBoolean"] is False
    assert patient["telecom"] == [
        {"system": "phone", "value": "(608)555-0101", "use": "home"},
        {"system": "email", "value": "alice.test@example.com"},
        {"system": "phone", "value": "(608)555-0199", "use": "work"},
    ]
    assert patient["address"][0]["use"] == "home"
    assert patient["address"][0]["district"] == "DANE"
    assert patient["address"][1]["type"] == "postal"
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    urls = [extension["url"] for extension in patient["extension"]]
    assert "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race" in urls
    assert patient["generalPractitioner"][0]["display"] == "DR GENERAL DOCTOR"


def test_epic_a01_visit_people_and_places() -> None:
    conversion = run(feeds.adt_a01_epic())
    encounter = resource_of(conversion, "Encounter")
    assert encounter["identifier"][0]["system"] == "urn:ehr:hl7v2:MERCY"
    assert encounter["identifier"][0]["value"] == "4000123456"
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["period"] == {"start": "2024-03-15T14:25:00-05:00"}
    roles = [p["type"][0]["coding"][0]["code"] for p in encounter["participant"]]
    assert roles == ["ATND", "ATND", "REF", "ADM"]
    # The NPI practitioner is one conditional create, referenced by PD1, PV1-7 and PV1-17.
    npi = by_identifier(conversion, "Practitioner", "1234567890")
    assert npi["identifier"][0]["system"] == "http://hl7.org/fhir/sid/us-npi"
    bed = by_identifier(conversion, "Location", "4WEST^412^B")
    assert bed["description"] == "4 West Med Surg"
    assert encounter["location"][0]["location"]["display"] == "4WEST^412^B"
    assert len(entries(conversion, "RelatedPerson")) == 2


def test_epic_a01_allergies_and_diagnoses() -> None:
    conversion = run(feeds.adt_a01_epic())
    allergies = [entry["resource"] for entry in entries(conversion, "AllergyIntolerance")]
    assert len(allergies) == 2  # the AL1 with only "" is no allergy
    coded, free_text = allergies
    assert coded["code"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert coded["criticality"] == "high"
    assert [r["manifestation"][0]["text"] for r in coded["reaction"]] == [
        "Hives",
        "Shortness of breath",
    ]
    assert free_text["code"] == {"text": "Peanuts and tree nuts, free text"}
    assert free_text["category"] == ["food"]
    diagnoses = resource_of(conversion, "Encounter")["diagnosis"]
    assert [d["use"]["coding"][-1] for d in diagnoses] == [
        {"system": f"{V2}0052", "code": "A"},
        # W (working) is a code of table 0052 the IG's sheet lists without a FHIR target: it
        # stays in the HL7 table, not in a sender-local copy of it.
        {"system": f"{V2}0052", "code": "W"},
    ]
    assert diagnoses[0]["rank"] == 1


def test_nk1_contact_role_the_table_does_not_have_is_the_senders() -> None:
    conversion = run(feeds.adt_a01_epic())
    spouse = entries(conversion, "RelatedPerson")[0]["resource"]
    codings = [c for concept in spouse["relationship"] for c in concept["coding"]]
    # EC is not a code of table 0131: under the HL7 URI HAPI refuses it ("Unknown code").
    assert {"system": "urn:ehr:hl7v2:MERCYHOSP:codesystem:HL70131", "code": "EC",
            "display": "Emergency Contact"} in codings  # fmt: skip
    assert {"system": f"{V2}0063", "code": "SPO", "display": "Spouse"} in codings


def test_a08_pid3_repetitions_with_different_assigning_authorities() -> None:
    conversion = run(feeds.adt_a08_authorities())
    entry = entry_of(conversion, "Patient")
    assert entry["request"]["url"] == "Patient?identifier=urn:ehr:hl7v2:EPI|E1234567"
    systems = {(i["system"], i["value"]) for i in entry["resource"]["identifier"]}
    assert ("urn:oid:2.16.840.1.113883.3.13", "X998877") in systems
    assert ("urn:oid:2.16.840.1.113883.3.14", "Z5550001") in systems
    assert ("urn:ehr:hl7v2:MERCY", "E1234567") in systems  # PID-2, sender's system
    assert entry["resource"]["maritalStatus"]["coding"][0]["code"] == "S"


def test_a40_merge() -> None:
    conversion = run(feeds.adt_a40_merge())
    survivor = by_identifier(conversion, "Patient", "E1234567")
    old_entry = next(e for e in entries(conversion, "Patient") if e["resource"] is not survivor)
    old = old_entry["resource"]
    assert old_entry["request"]["url"] == "Patient?identifier=urn:ehr:hl7v2:EPI|E7654321"
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": entries(conversion, "Patient")[0]["fullUrl"]},
                            "type": "replaced-by"}]  # fmt: skip
    assert survivor["link"][0]["type"] == "replaces"
    assert old["name"][0]["given"] == ["ALLIE"]


def test_latin1_message_declared_in_msh18() -> None:
    conversion = run(feeds.adt_a04_latin1())
    patient = resource_of(conversion, "Patient")
    assert patient["name"][0]["family"] == "MÜLLERTEST"
    assert patient["name"][0]["given"] == ["JOSÉ", "FRANÇOIS"]
    assert patient["address"][0]["city"] == "MONTRÉAL"
    assert patient["birthDate"] == "1960-02-29"
    assert resource_of(conversion, "Encounter")["period"]["start"] == "2024-03-23T07:50:00+01:00"


def test_cerner_lf_separated_a03() -> None:
    conversion = run(feeds.adt_a03_cerner_lf())
    patient = resource_of(conversion, "Patient")
    assert patient["identifier"][0] == {
        "type": {"text": "MRN"}, "system": "urn:ehr:hl7v2:CERNERMRN", "value": "1122334"
    }  # fmt: skip
    encounter = resource_of(conversion, "Encounter")
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "EMER"
    # No zone in MSH-7 nor in the values: UTC, as documented.
    assert encounter["period"] == {"start": "2024-03-24T08:00:00Z", "end": "2024-03-24T10:10:00Z"}
    assert encounter["identifier"][0]["system"] == "urn:ehr:hl7v2:CERNERFIN"


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"])
def test_every_version(version: str) -> None:
    conversion = run(feeds.adt_a04_version(version))
    patient = resource_of(conversion, "Patient")
    assert patient["telecom"][0]["value"] == "+1 608 5550140"
    assert resource_of(conversion, "Encounter")["status"] == "in-progress"
    assert resource_of(conversion, "MessageHeader")["eventCoding"]["code"] == "A04"


# ----------------------------------------------------------------------------- ORU


def test_lab_oru_report_and_order() -> None:
    conversion = run(feeds.oru_lab())
    reports = [entry["resource"] for entry in entries(conversion, "DiagnosticReport")]
    assert [r["status"] for r in reports] == ["final", "final"]
    chemistry = reports[0]
    assert chemistry["code"]["coding"][0] == {
        "system": "http://www.ama-assn.org/go/cpt", "code": "80053",
        "display": "Comprehensive metabolic panel",
    }  # fmt: skip
    assert chemistry["effectiveDateTime"] == "2024-03-16T07:15:00-06:00"
    assert chemistry["issued"] == "2024-03-16T08:15:00-06:00"
    assert len(chemistry["result"]) == 6
    assert len(reports[1]["result"]) == 10
    assert reports[1]["presentedForm"] == [
        {"contentType": "application/pdf", "data": feeds.PDF, "title": "PDF Report"}
    ]
    order = by_identifier(conversion, "ServiceRequest", "ORD111")
    assert order["status"] == "completed"
    assert order["note"] == [{"text": "Specimen slightly hemolyzed."}]  # NTE after OBR


def test_lab_oru_numeric_results() -> None:
    conversion = run(feeds.oru_lab())
    glucose = observation(conversion, "LAB555-1-2345-7")
    assert glucose["valueQuantity"] == {
        "value": 105,
        "unit": "mg/dL",
        "system": UCUM,
        "code": "mg/dL",
    }
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"
    assert glucose["referenceRange"][0]["low"]["value"] == 70
    assert glucose["referenceRange"][0]["high"]["value"] == 99
    assert glucose["effectiveDateTime"] == "2024-03-16T07:15:00-06:00"
    creatinine = observation(conversion, "LAB555-3-2160-0")
    assert [i["coding"][0]["code"] for i in creatinine["interpretation"]] == ["H", "A"]
    assert creatinine["note"] == [
        {"text": "Result verified by repeat analysis.\nCalled to RN TEST at 0815."},
        {"text": "Second note line"},
    ]
    egfr = observation(conversion, "LAB555-4-33914-3")
    assert egfr["valueQuantity"]["comparator"] == ">"
    assert egfr["valueQuantity"]["value"] == 60
    assert egfr["referenceRange"][0]["low"]["value"] == 59
    albumin = observation(conversion, "LAB555-5-1751-7")
    assert albumin["status"] == "cancelled"
    assert "valueQuantity" not in albumin
    assert albumin["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert observation(conversion, "LAB555-6-2965-2")["valueString"] == "1.025"


def test_lab_oru_other_value_types() -> None:
    conversion = run(feeds.oru_lab())
    color = observation(conversion, "LAB556-1-5778-6")
    assert color["valueCodeableConcept"]["coding"][0]["system"] == "urn:ehr:hl7v2:QLAB:codesystem:L"
    ratio = observation(conversion, "LAB556-1-5767-9")["valueRatio"]
    assert (ratio["numerator"]["value"], ratio["denominator"]["value"]) == (1, 2)
    protein = observation(conversion, "LAB556-1-20454-5")
    assert protein["valueQuantity"]["comparator"] == "<"
    assert protein["referenceRange"][0]["high"]["value"] == 30
    esterase = observation(conversion, "LAB556-1-5799-2")["valueRange"]
    assert (esterase["low"]["value"], esterase["high"]["value"]) == (10, 20)
    assert observation(conversion, "LAB556-1-8251-1")["valueString"] == (
        "Few epithelial cells seen\nRare bacteria"
    )
    assert observation(conversion, "LAB556-1-11502-2")["valueString"] == (
        "Line one\nLine two with | pipe, ^ caret, & amp, bold text"
    )
    assert observation(conversion, "LAB556-1-18769-0")["valueDateTime"] == (
        "2024-03-16T07:15:00.123-06:00"
    )
    assert observation(conversion, "LAB556-1-11368-8")["valueDateTime"] == "2024-03-10"
    staph = observation(conversion, "LAB556-1-600-7")
    assert staph["status"] == "preliminary"
    assert staph["valueCodeableConcept"]["coding"][0]["system"] == "http://snomed.info/sct"
    assert (
        observation(conversion, "LAB556-2-600-7")["valueCodeableConcept"]["coding"][0]["code"]
        == "112283007"
    )


def test_correction_keeps_the_observation_key() -> None:
    first = run(feeds.oru_lab())
    corrected = run(feeds.oru_lab("QL000124", glucose="112", glucose_status="C"))
    before = next(e for e in entries(first, "Observation") if "2345-7" in e["request"]["url"])
    after = next(e for e in entries(corrected, "Observation") if "2345-7" in e["request"]["url"])
    assert before["request"] == after["request"]
    assert after["resource"]["status"] == "corrected"
    assert after["resource"]["valueQuantity"]["value"] == 112
    assert by_identifier(corrected, "DiagnosticReport", "LAB555")["status"] == "corrected"


def test_continuation_tx_lines_are_one_observation() -> None:
    conversion = run(feeds.oru_continuation_lines())
    observations = entries(conversion, "Observation")
    assert len(observations) == 3
    impression = observations[0]
    assert (
        impression["request"]["url"] == "Observation?identifier=urn:ehr:hl7v2:MT|R990-1-71046%26IMP"
    )
    assert impression["resource"]["valueString"] == (
        "No acute cardiopulmonary process.\nHeart size normal.\n\nDictated by: READER, RITA"
    )
    # Without OBX-4 the lines of one code still belong together (keyed by the first set id).
    findings = observations[1]["resource"]
    assert findings["valueString"] == "Lungs clear.\nNo effusion."
    assert observations[2]["resource"]["valueCodeableConcept"]["coding"][0]["code"] == "1"
    report = resource_of(conversion, "DiagnosticReport")
    assert len(report["result"]) == 3
    # No zone anywhere (2.3 feed): UTC.
    assert report["effectiveDateTime"] == "2024-03-26T10:00:00Z"


def test_same_code_and_sub_id_that_is_not_text_keeps_both_results() -> None:
    raw = feeds.oru_continuation_lines().replace(
        "OBX|7|CE|71046&DX^Diagnostic code^C4||1^Normal^L||||||F",
        "OBX|7|NM|8867-4^Heart rate^LN|1|72|/min||||F\r"
        "OBX|8|NM|8867-4^Heart rate^LN|1|75|/min||||F",
    )
    conversion = run(raw)
    urls = [e["request"]["url"] for e in entries(conversion, "Observation")]
    assert urls[-2:] == [
        "Observation?identifier=urn:ehr:hl7v2:MT|R990-1-8867-4",
        "Observation?identifier=urn:ehr:hl7v2:MT|R990-1-8867-4-8",
    ]


def test_long_message() -> None:
    raw = feeds.oru_long()
    assert len(raw) > 200_000
    conversion = run(raw)
    assert len(entries(conversion, "Observation")) == 249
    report = resource_of(conversion, "DiagnosticReport")
    assert len(report["result"]) == 249
    assert base64.b64decode(report["presentedForm"][0]["data"]).startswith(b"%PDF-1.4")
    order = resource_of(conversion, "ServiceRequest")
    assert order["note"][0]["text"].count("\n") == 199
    assert observation(conversion, "BIG1-42-TEST042")["valueQuantity"]["value"] == 42.5


def test_result_feed_finds_the_registered_patient_by_any_pid3_identifier() -> None:
    """The lab lists its own id first, the hospital MRN second: the conditional create must
    find the Patient registration wrote (keyed on the MRN), not create a second one."""
    conversion = run(feeds.oru_lab())
    entry = entry_of(conversion, "Patient")
    assert entry["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:ehr:hl7v2:QLAB|LAB998877,urn:ehr:hl7v2:EPI|E1234567",
    }
    assert conversion.patient_identifier == "urn:ehr:hl7v2:QLAB|LAB998877"
    # Registration itself still updates on its key alone.
    assert entry_of(run(feeds.adt_a01_epic()), "Patient")["request"]["method"] == "PUT"


# ----------------------------------------------------------------------------- orders


@pytest.mark.parametrize(
    ("control", "status"), [("NW", "active"), ("CA", "active"), ("XO", "unknown")]
)
def test_orm_order_control(control: str, status: str) -> None:
    conversion = run(feeds.orm_o01(control))
    entry = entry_of(conversion, "ServiceRequest")
    assert entry["request"] == {
        "method": "PUT", "url": "ServiceRequest?identifier=urn:ehr:hl7v2:EPIC|RADORD1"
    }  # fmt: skip
    order = entry["resource"]
    assert order["status"] == status
    assert order["priority"] == "routine"
    assert order["occurrenceDateTime"] == "2024-03-18T08:00:00-05:00"
    assert order["reasonCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
    assert order["note"] == [{"text": "Patient is pregnant? No"}]
    # The placer group number: text, the terminology server's v2-0203 has no PGN.
    assert order["requisition"] == {
        "type": {"text": "Placer Group Number"}, "system": "urn:ehr:hl7v2:EPIC", "value": "GRP1"
    }  # fmt: skip
    assert ("authoredOn" in order) is (control == "NW")


def test_oml_o21() -> None:
    conversion = run(feeds.oml_o21())
    order = resource_of(conversion, "ServiceRequest")
    assert order["identifier"][0]["system"] == "urn:oid:1.2.840.114350.1.13.999.2"
    assert order["status"] == "active"
    assert order["priority"] == "stat"
    assert order["authoredOn"] == "2024-03-17T09:55:00-05:00"
    assert order["requester"]["display"] == "GENERAL DOCTOR"
    assert order["note"] == [{"text": "Fasting specimen"}]  # the OBX/SPM after it are not notes


# ----------------------------------------------------------------------------- SIU, VXU, MDM


def test_siu_booked_rescheduled_cancelled() -> None:
    booked = resource_of(run(feeds.siu()), "Appointment")
    assert booked["status"] == "booked"
    assert (booked["start"], booked["end"]) == (
        "2024-03-20T09:00:00-05:00",
        "2024-03-20T09:30:00-05:00",
    )
    assert booked["minutesDuration"] == 30
    assert booked["comment"] == "Patient requests morning slot"
    # FOLLOWUP sent as an HL70277 code is not one of table 0277's: the sender's own.
    assert booked["appointmentType"]["coding"] == [
        {
            "system": "urn:ehr:hl7v2:MERCY:codesystem:HL70277",
            "code": "FOLLOWUP",
            "display": "Follow up",
        }
    ]
    assert [p["status"] for p in booked["participant"]] == ["accepted"] * 3
    moved = resource_of(run(feeds.siu("S14", "SIU0002", start="1000")), "Appointment")
    assert moved["start"] == "2024-03-20T10:00:00-05:00"
    cancelled = resource_of(run(feeds.siu("S15", "SIU0003")), "Appointment")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["coding"][0]["code"] == "PATCANC"


def test_vxu_immunizations() -> None:
    conversion = run(feeds.vxu_v04())
    given = by_identifier(conversion, "Immunization", "VX9001")
    assert given["status"] == "completed"
    assert given["vaccineCode"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/cvx", "code": "08",
        "display": "Hep B, adolescent or pediatric",
    }  # fmt: skip
    assert given["occurrenceDateTime"] == "2024-03-19T13:30:00-05:00"
    assert given["primarySource"] is True
    assert given["doseQuantity"] == {
        "value": 0.5,
        "unit": "milliliters",
        "system": UCUM,
        "code": "mL",
    }
    assert given["lotNumber"] == "LOT12345"
    assert given["manufacturer"]["identifier"] == {
        "system": "http://hl7.org/fhir/sid/mvx",
        "value": "MSD",
    }
    # NCIT (the CDC IIS guide's route codes) is a known code system, not a sender-local one.
    assert (
        given["route"]["coding"][0]["system"]
        == "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
    )
    assert given["site"]["coding"][0] == {
        "system": f"{V2}0163",
        "code": "LT",
        "display": "Left Thigh",
    }
    refused = by_identifier(conversion, "Immunization", "VX9999")
    assert refused["status"] == "not-done"
    assert refused["statusReason"]["coding"][0]["code"] == "00"
    assert "doseQuantity" not in refused  # 999: unknown amount
    historical = by_identifier(conversion, "Immunization", "VX9002")
    assert historical["primarySource"] is False
    assert by_identifier(conversion, "Immunization", "VX9003")["status"] == "not-done"


def test_mdm_t02_document() -> None:
    conversion = run(feeds.mdm_t02())
    document = resource_of(conversion, "DocumentReference")
    assert document["masterIdentifier"] == {"system": "urn:ehr:hl7v2:EPIC", "value": "DOC778899"}
    assert document["status"] == "current"
    assert document["docStatus"] == "final"
    assert document["type"]["coding"][0]["code"] == "DS"
    assert document["date"] == "2024-03-20T11:00:00-05:00"
    attachment = document["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]).decode() == (
        "DISCHARGE SUMMARY\nPatient admitted with chest pain.\nRuled out MI.\n"
        "Follow up in 2 weeks & call if worse."
    )
    assert (
        document["context"]["encounter"][0]["reference"]
        == entry_of(conversion, "Encounter")["fullUrl"]
    )


# ----------------------------------------------------------------------------- parsing


def _obx5(text: str, encoding: str = "^~\\&", version: str = "2.5.1") -> str:
    message = parse_message(
        f"MSH|{encoding}|A|B|C|D|20240101||ORU^R01|1|P|{version}\rOBX|1|FT|X||{text}"
    )
    obx = message.first("OBX")
    assert obx is not None
    return obx.value(5)


def test_unescaping() -> None:
    assert _obx5("a\\.br\\b") == "a\rb"
    assert _obx5("\\H\\bold\\N\\ text") == "bold text"  # python-hl7 wrote "_bold_"
    assert _obx5("\\F\\\\S\\\\T\\\\R\\\\E\\") == "|^&~\\"
    assert _obx5("caf\\XC3A9\\") == "café"  # UTF-8 bytes (python-hl7: Latin-1 "cafÃ©")
    assert _obx5("x\\.sp2\\y") == "x\r\ry"
    assert _obx5("\\.in+4\\indented") == "indented"
    # A stray escape character in free text is the sender's text, kept (python-hl7 dropped
    # "temp" and logged the whole field).
    assert _obx5("C:\\temp\\file.txt") == "C:\\temp\\file.txt"
    assert _obx5("w\\o trailing\\") == "w\\o trailing\\"
    assert _obx5("\\Zvendor\\") == "\\Zvendor\\"


def test_truncation_character_in_msh2() -> None:
    message = parse_message("MSH|^~\\&#|A|B|C|D|20240101||ORU^R01|1|P|2.7\rOBX|1|ST|X||a\\P\\b#c")
    assert message.header.encoding_characters == "^~\\&#"
    obx = message.first("OBX")
    assert obx is not None
    assert obx.value(5) == "a#b#c"


def test_unescaping_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    _obx5("\\C2842\\ \\M244242\\ \\\\ \\Xzz\\ \\Q\\")
    assert caplog.records == []


def test_national_registries_get_their_fhir_systems_both_ways() -> None:
    from ehr.modules.hl7v2.from_fhir import adt_a08
    from ehr.modules.hl7v2.parsing import parse_message
    from ehr.modules.hl7v2.to_fhir import identifier_system

    assert identifier_system("NPI") == "http://hl7.org/fhir/sid/us-npi"
    assert identifier_system("SSA") == "http://hl7.org/fhir/sid/us-ssn"
    assert identifier_system("", "2.16.840.1.113883.4.6", "ISO") == "http://hl7.org/fhir/sid/us-npi"
    assert identifier_system("HOSP") == "urn:ehr:hl7v2:HOSP"
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:ehr:hl7v2:HOSP", "value": "123"},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-1234"},
        ],
        "name": [{"family": "Registry", "given": ["Ria"]}],
    }
    import datetime as dt

    text = adt_a08(
        patient=patient,
        encounter=None,
        sending_application="EHR",
        sending_facility="EHR",
        receiving_application="HUB",
        receiving_facility="HUB",
        control_id="C1",
        timestamp=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    pid = parse_message(text).first("PID")
    assert pid is not None
    ssn = pid.repetitions(3)[1]
    assert (ssn.value(1), ssn.value(4, 1), ssn.value(4, 2), ssn.value(4, 3)) == (
        "999-00-1234",
        "SSA",
        "2.16.840.1.113883.4.1",
        "ISO",
    )
    # …and back: the same system, not a urn:oid:.
    assert identifier_system(ssn.value(4, 1), ssn.value(4, 2), ssn.value(4, 3)) == (
        "http://hl7.org/fhir/sid/us-ssn"
    )
