"""ORU R01 -> DiagnosticReport, Observation (and the ServiceRequest they are based on)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from test_to_fhir_builders import (
    convert,
    entries,
    entry_of,
    message,
    msh,
    pid,
    resource_of,
    segment,
)

from ehr.modules.hl7v2.to_fhir import Conversion, ConversionError

LAB = "urn:oid:2.16.840.1.113883.3.111"
PLACER = "urn:ehr:hl7v2:EHR"


def obr(set_id: str = "1", filler: str = "F100", **fields: str) -> str:
    values = {
        1: set_id,
        2: "P100^EHR",
        3: f"{filler}^LAB^2.16.840.1.113883.3.111^ISO",
        4: "24331-1^Lipid panel^LN",
        7: "20250101083000",
        22: "20250101120000",
        24: "CH",
        25: "F",
    }
    values.update({int(key[1:]): val for key, val in fields.items()})
    return segment("OBR", values)


def obx(set_id: str, kind: str, code: str, result: str, **fields: str) -> str:
    values = {1: set_id, 2: kind, 3: code, 5: result, 11: "F"}
    values.update({int(key[1:]): val for key, val in fields.items()})
    return segment("OBX", values)


def oru(*segments: str) -> Conversion:
    return convert(
        message(
            msh("ORU^R01^ORU_R01", sending_application="LIS", sending_facility="LAB"),
            pid(),
            *segments,
        )
    )


def by_code(conversion: Conversion, code: str) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in entries(conversion, "Observation")
        if e["resource"]["code"]["coding"][0]["code"] == code
    )


def test_report_observations_and_order() -> None:
    conversion = oru(
        segment("ORC", {1: "RE", 2: "P100^EHR", 3: "F100^LAB^2.16.840.1.113883.3.111^ISO"}),
        obr(),
        segment("NTE", {1: "1", 3: "Fasting specimen"}),
        obx("1", "NM", "2093-3^Cholesterol^LN", "212", f6="mg/dL^^UCUM", f7="<200", f8="H"),
        segment("NTE", {1: "1", 3: "Repeat in 6 months"}),
        obx("2", "NM", "2571-8^Triglyceride^LN", "150", f6="mg/dl", f7="0-149", f8="H"),
    )
    report_entry = entry_of(conversion, "DiagnosticReport")
    report = report_entry["resource"]
    order = entry_of(conversion, "ServiceRequest")
    observations = entries(conversion, "Observation")

    assert report_entry["request"] == {
        "method": "PUT",
        "url": f"DiagnosticReport?identifier={LAB}|F100",
    }
    assert report["status"] == "final"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "24331-1",
        "display": "Lipid panel",
    }
    assert report["category"][0]["coding"][0]["code"] == "CH"
    assert report["effectiveDateTime"] == "2025-01-01T08:30:00-05:00"
    assert report["issued"] == "2025-01-01T12:00:00-05:00"
    assert report["basedOn"] == [{"reference": order["fullUrl"]}]
    assert report["result"] == [{"reference": e["fullUrl"]} for e in observations]
    assert report["subject"] == {"reference": entry_of(conversion, "Patient")["fullUrl"]}

    # the order is only made sure of: a known order is not overwritten by the lab
    assert order["request"] == {
        "method": "POST",
        "url": "ServiceRequest",
        "ifNoneExist": f"identifier={PLACER}|P100",
    }
    assert order["resource"]["note"] == [{"text": "Fasting specimen"}]
    assert entry_of(conversion, "Patient")["request"]["method"] == "POST"

    cholesterol = by_code(conversion, "2093-3")
    assert observations[0]["request"]["url"] == f"Observation?identifier={LAB}|F100-1-2093-3"
    assert cholesterol["status"] == "final"
    assert cholesterol["valueQuantity"] == {
        "value": 212,
        "unit": "mg/dL",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert cholesterol["referenceRange"] == [
        {
            "text": "<200",
            "high": {
                "value": 200,
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        }
    ]
    assert cholesterol["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "H",
        "display": "High",
    }
    assert cholesterol["note"] == [{"text": "Repeat in 6 months"}]
    assert cholesterol["basedOn"] == [{"reference": order["fullUrl"]}]
    assert cholesterol["effectiveDateTime"] == "2025-01-01T08:30:00-05:00"  # OBR-7 fallback

    triglyceride = by_code(conversion, "2571-8")
    assert triglyceride["valueQuantity"]["code"] == "mg/dL"  # unmarked, unambiguous spelling
    assert triglyceride["referenceRange"][0]["low"]["value"] == 0
    assert triglyceride["referenceRange"][0]["high"]["value"] == 149


def test_corrected_result_updates_the_same_observation() -> None:
    final = oru(obr(), obx("1", "NM", "2093-3^Cholesterol^LN", "212"))
    corrected = oru(obr(f25="C"), obx("1", "NM", "2093-3^Cholesterol^LN", "198", f11="C"))

    first, second = entry_of(final, "Observation"), entry_of(corrected, "Observation")
    assert first["request"] == second["request"]
    assert first["fullUrl"] == second["fullUrl"]
    assert second["resource"]["status"] == "corrected"
    assert second["resource"]["valueQuantity"]["value"] == 198
    assert resource_of(corrected, "DiagnosticReport")["status"] == "corrected"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("F", "final"), ("P", "preliminary"), ("C", "corrected"), ("D", "entered-in-error"),
     ("W", "entered-in-error"), ("X", "cancelled"), ("A", "amended"), ("R", "preliminary"),
     ("I", "registered"), ("", "unknown")],
)  # fmt: skip
def test_observation_status(status: str, expected: str) -> None:
    conversion = oru(obr(), obx("1", "ST", "X1^Comment^L", "text", f11=status))
    assert resource_of(conversion, "Observation")["status"] == expected


def test_value_types() -> None:
    conversion = oru(
        obr(),
        obx("1", "SN", "A^a^L", "<^5", f6="mmol/L^^UCUM"),
        obx("2", "SN", "B^b^L", "^1^:^128"),
        obx("3", "SN", "C^c^L", "^10^-^20", f6="%"),
        obx("4", "CWE", "D^d^L", "260373001^Detected^SCT"),
        obx("5", "CE", "E^e^L", "POS^Positive^HL70078"),
        obx("6", "TS", "F^f^L", "202501011230"),
        obx("7", "DT", "G^g^L", "20250101"),
        obx("8", "FT", "H^h^L", "line one\\.br\\line two~line three"),
        obx("9", "NM", "I^i^L", ">=10"),
        obx("10", "NM", "J^j^L", "see note"),
        obx("11", "TX", "K^k^L", "a^b"),
    )
    assert by_code(conversion, "A")["valueQuantity"] == {
        "value": 5,
        "comparator": "<",
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    assert by_code(conversion, "B")["valueRatio"] == {
        "numerator": {"value": 1},
        "denominator": {"value": 128},
    }
    assert by_code(conversion, "C")["valueRange"]["high"]["value"] == 20
    assert by_code(conversion, "D")["valueCodeableConcept"]["coding"][0]["system"] == (
        "http://snomed.info/sct"
    )
    assert by_code(conversion, "E")["valueCodeableConcept"]["coding"][0]["system"] == (
        "http://terminology.hl7.org/CodeSystem/v2-0078"
    )
    assert by_code(conversion, "F")["valueDateTime"] == "2025-01-01T12:30:00-05:00"
    assert by_code(conversion, "G")["valueDateTime"] == "2025-01-01"
    assert by_code(conversion, "H")["valueString"] == "line one\nline two\nline three"
    assert by_code(conversion, "I")["valueQuantity"] == {"value": 10, "comparator": ">="}
    assert by_code(conversion, "J")["valueString"] == "see note"
    assert by_code(conversion, "K")["valueString"] == "a^b"
    codes = by_code(conversion, "A")["code"]["coding"][0]
    assert codes["system"] == "urn:ehr:hl7v2:LAB:codesystem:L"  # local codes stay the sender's


def test_embedded_pdf_becomes_the_report_presented_form() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 report").decode()
    conversion = oru(obr(), obx("1", "ED", "PDF^Report^L", f"LAB^AP^PDF^Base64^{pdf}"))
    report = resource_of(conversion, "DiagnosticReport")
    assert report["presentedForm"] == [
        {"contentType": "application/pdf", "data": pdf, "title": "Report"}
    ]
    assert entries(conversion, "Observation") == []


def test_broken_base64_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        oru(obr(), obx("1", "ED", "PDF^Report^L", "LAB^AP^PDF^Base64^<Base64 encoded>"))
    assert raised.value.location == "OBX-5"


def test_several_order_groups() -> None:
    conversion = oru(
        obr("1", "F1"),
        obx("1", "NM", "2093-3^Cholesterol^LN", "212"),
        obr("2", "F2", f2="P200^EHR", f4="58410-2^CBC^LN"),
        obx("1", "NM", "718-7^Hemoglobin^LN", "13.5", f6="g/dL"),
    )
    reports = entries(conversion, "DiagnosticReport")
    assert [r["request"]["url"] for r in reports] == [
        f"DiagnosticReport?identifier={LAB}|F1",
        f"DiagnosticReport?identifier={LAB}|F2",
    ]
    hemoglobin = by_code(conversion, "718-7")
    second_results = reports[1]["resource"]["result"]
    assert len(second_results) == 1
    assert entries(conversion, "Observation")[1]["request"]["url"].endswith("|F2-1-718-7")
    assert hemoglobin["valueQuantity"]["value"] == 13.5
    assert len(entries(conversion, "ServiceRequest")) == 2


def test_report_without_order_number_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        oru(obr(f2="", f3=""), obx("1", "NM", "2093-3^Cholesterol^LN", "212"))
    assert raised.value.location == "OBR-3"


def test_invalid_result_time_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        oru(obr(), obx("1", "NM", "2093-3^Cholesterol^LN", "212", f14="20250230"))
    assert raised.value.location == "OBX-14"


def test_duplicate_observation_key_is_refused() -> None:
    with pytest.raises(ConversionError):
        oru(
            obr(),
            obx("1", "NM", "2093-3^Cholesterol^LN", "212"),
            obx("1", "NM", "2093-3^C^LN", "1"),
        )
