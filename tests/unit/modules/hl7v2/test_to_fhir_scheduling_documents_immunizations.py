"""VXU V04 -> Immunization, SIU S12-S15 -> Appointment, MDM T02 -> DocumentReference."""

from __future__ import annotations

import base64

import pytest
from test_to_fhir_builders import (
    convert,
    entries,
    entry_of,
    message,
    msh,
    pid,
    pv1,
    resource_of,
    segment,
)

from ehr.modules.hl7v2.to_fhir import Conversion, ConversionError


def vxu(rxa_fields: dict[int, str], *, orc: bool = True) -> Conversion:
    rxa = {1: "0", 2: "1", 3: "20250105101500", 5: "08^HepB pediatric^CVX", 6: "0.5",
           7: "mL^milliliter^UCUM", 9: "00^New record^NIP001", 15: "LOT42",
           17: "MSD^Merck^MVX", 20: "CP", 21: "A"}  # fmt: skip
    rxa.update(rxa_fields)
    segments = [msh("VXU^V04^VXU_V04", sending_application="IIS"), pid()]
    if orc:
        segments.append(segment("ORC", {1: "RE", 2: "IZ-9^EHR", 3: "IZ-77^IIS"}))
    segments += [
        segment("RXA", rxa),
        segment("RXR", {1: "IM^Intramuscular^HL70162", 2: "LD^Left deltoid^HL70163"}),
    ]
    return convert(message(*segments))


def test_immunization() -> None:
    conversion = vxu({})
    entry = entry_of(conversion, "Immunization")
    immunization = entry["resource"]
    assert entry["request"]["url"] == "Immunization?identifier=urn:ehr:hl7v2:IIS|IZ-77"
    assert immunization["status"] == "completed"
    assert immunization["vaccineCode"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/cvx",
        "code": "08",
        "display": "HepB pediatric",
    }
    assert immunization["occurrenceDateTime"] == "2025-01-05T10:15:00-05:00"
    assert immunization["doseQuantity"] == {
        "value": 0.5,
        "unit": "milliliter",
        "system": "http://unitsofmeasure.org",
        "code": "mL",
    }
    assert immunization["lotNumber"] == "LOT42"
    assert immunization["manufacturer"]["identifier"] == {
        "system": "http://hl7.org/fhir/sid/mvx",
        "value": "MSD",
    }
    assert immunization["primarySource"] is True
    assert immunization["route"]["coding"][0]["code"] == "IM"
    assert immunization["patient"] == {"reference": entry_of(conversion, "Patient")["fullUrl"]}


@pytest.mark.parametrize(
    ("fields", "status"),
    [({20: "CP"}, "completed"), ({20: "RE"}, "not-done"), ({20: "NA"}, "not-done"),
     ({20: "PA"}, "completed"), ({20: ""}, "completed"), ({21: "D"}, "entered-in-error")],
)  # fmt: skip
def test_immunization_status(fields: dict[int, str], status: str) -> None:
    assert resource_of(vxu(fields), "Immunization")["status"] == status


def test_immunization_without_orc_is_keyed_on_patient_time_and_vaccine() -> None:
    first, again = vxu({}, orc=False), vxu({21: "D"}, orc=False)
    url = entry_of(first, "Immunization")["request"]["url"]
    assert url.startswith("Immunization?identifier=urn:ehr:hl7v2:immunization|")
    assert entry_of(again, "Immunization")["request"]["url"] == url


def siu(trigger: str, **sch_fields: str) -> Conversion:
    sch = {1: "PA-1^EHR", 2: "AP-1^SCHED", 6: "PATCAN^Patient cancelled",
           7: "CHECKUP^Checkup^HL70276", 8: "Normal^Routine^HL70277", 9: "30", 10: "min",
           11: "^^^20250110090000^20250110093000", 25: "Booked"}  # fmt: skip
    sch.update({int(key[1:]): val for key, val in sch_fields.items()})
    return convert(
        message(
            msh(f"SIU^{trigger}^SIU_S12", sending_application="SCHED"),
            segment("SCH", sch),
            segment("NTE", {1: "1", 3: "Bring glasses"}),
            pid(),
            pv1(),
            segment("RGS", {1: "1"}),
            segment("AIS", {1: "1", 3: "CONSULT^Consultation"}),
            segment("AIL", {1: "1", 3: "CLINIC^12^^GOODHEALTH"}),
            segment("AIP", {1: "1", 3: "1234^WELBY^MARCUS", 4: "D^Doctor"}),
        )
    )


def test_new_appointment() -> None:
    conversion = siu("S12")
    entry = entry_of(conversion, "Appointment")
    appointment = entry["resource"]
    assert entry["request"]["url"] == "Appointment?identifier=urn:ehr:hl7v2:SCHED|AP-1"
    assert appointment["status"] == "booked"
    assert appointment["start"] == "2025-01-10T09:00:00-05:00"
    assert appointment["end"] == "2025-01-10T09:30:00-05:00"
    assert appointment["minutesDuration"] == 30
    assert appointment["comment"] == "Bring glasses"
    assert appointment["reasonCode"][0]["coding"][0]["system"] == "http://snomed.info/sct"
    assert appointment["reasonCode"][0]["coding"][0]["code"] == "866149003"
    actors = [p["actor"]["reference"] for p in appointment["participant"]]
    assert actors[0] == entry_of(conversion, "Patient")["fullUrl"]
    practitioners = entries(conversion, "Practitioner")
    assert any(e["fullUrl"] in actors for e in practitioners)
    assert "cancelationReason" not in appointment


def test_appointment_status_by_event() -> None:
    assert resource_of(siu("S13"), "Appointment")["status"] == "booked"
    assert resource_of(siu("S14", f25="Pending"), "Appointment")["status"] == "pending"
    cancelled = resource_of(siu("S15", f25="Cancelled"), "Appointment")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["coding"][0]["code"] == "PATCAN"
    assert (
        entry_of(siu("S12"), "Appointment")["request"]
        == entry_of(siu("S15"), "Appointment")["request"]
    )


def test_end_from_duration_and_missing_times() -> None:
    appointment = resource_of(siu("S12", f11="^^^20250110090000"), "Appointment")
    assert appointment["end"] == "2025-01-10T09:30:00-05:00"
    with pytest.raises(ConversionError) as raised:
        siu("S12", f11="", f9="")
    assert raised.value.location == "SCH-11"


def mdm(*obx: str, txa: dict[int, str] | None = None) -> Conversion:
    fields = {1: "1", 2: "DS^Discharge summary^HL70270", 3: "TX", 6: "20250101110000",
              9: "1234^WELBY^MARCUS", 12: "DOC-1^EMR", 17: "AU", 19: "AV"}  # fmt: skip
    fields.update(txa or {})
    return convert(
        message(msh("MDM^T02^MDM_T02", sending_application="EMR"), segment("EVN", {1: "T02"}),
                pid(), pv1(), segment("TXA", fields), *obx)
    )  # fmt: skip


def test_document_reference_with_text_and_pdf() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 doc").decode()
    conversion = mdm(
        segment("OBX", {1: "1", 2: "TX", 3: "NOTE^Note", 5: "Line one~Line two", 11: "F"}),
        segment("OBX", {1: "2", 2: "ED", 3: "PDF^Pdf", 5: f"EMR^AP^PDF^Base64^{pdf}", 11: "F"}),
    )
    entry = entry_of(conversion, "DocumentReference")
    document = entry["resource"]
    assert entry["request"]["url"] == "DocumentReference?identifier=urn:ehr:hl7v2:EMR|DOC-1"
    assert document["masterIdentifier"] == {"system": "urn:ehr:hl7v2:EMR", "value": "DOC-1"}
    assert document["status"] == "current"
    assert document["docStatus"] == "final"
    assert document["type"]["coding"][0]["code"] == "DS"
    assert document["date"] == "2025-01-01T11:00:00-05:00"
    text, attached = document["content"]
    assert base64.b64decode(text["attachment"]["data"]).decode() == "Line one\nLine two"
    assert text["attachment"]["contentType"] == "text/plain; charset=utf-8"
    assert attached["attachment"]["contentType"] == "application/pdf"
    assert attached["attachment"]["data"] == pdf
    assert (
        document["context"]["encounter"][0]["reference"]
        == entry_of(conversion, "Encounter")["fullUrl"]
    )


def test_document_status_and_missing_content() -> None:
    obx = segment("OBX", {1: "1", 2: "TX", 3: "NOTE", 5: "x"})
    assert resource_of(mdm(obx, txa={19: "OB"}), "DocumentReference")["status"] == "superseded"
    with pytest.raises(ConversionError) as raised:
        mdm()
    assert raised.value.location == "OBX-5"
