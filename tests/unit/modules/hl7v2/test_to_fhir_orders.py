"""ORM O01 / OML O21 -> ServiceRequest."""

from __future__ import annotations

import pytest
from test_to_fhir_builders import convert, entries, entry_of, message, msh, pid, pv1, segment

from ehr.modules.hl7v2.to_fhir import Conversion, ConversionError

PLACER = "urn:ehr:hl7v2:EHR"
FILLER = "urn:ehr:hl7v2:LAB"


def order_message(control: str, *, event: str = "ORM^O01^ORM_O01", status: str = "") -> Conversion:
    return convert(
        message(
            msh(event, sending_application="CPOE", sending_facility="EHR"),
            pid(),
            pv1(),
            segment(
                "ORC",
                {
                    1: control,
                    2: "P100^EHR",
                    3: "F100^LAB",
                    5: status,
                    9: "20250101101500",
                    12: "1234^WELBY^MARCUS^^^DR",
                },
            ),
            segment(
                "OBR",
                {
                    1: "1",
                    2: "P100^EHR",
                    4: "24331-1^Lipid panel^LN",
                    5: "S",
                    31: "E78.5^Hyperlipidemia^I10C",
                },
            ),
            segment("NTE", {1: "1", 3: "Patient fasting"}),
        )
    )


def test_new_order() -> None:
    conversion = order_message("NW")
    entry = entry_of(conversion, "ServiceRequest")
    order = entry["resource"]
    assert entry["request"] == {"method": "PUT", "url": f"ServiceRequest?identifier={PLACER}|P100"}
    placer, filler = order["identifier"]
    assert placer["type"]["coding"][0]["code"] == "PLAC"
    assert filler == {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "FILL",
                    "display": "Filler Identifier",
                }
            ]
        },
        "system": FILLER,
        "value": "F100",
    }
    assert order["status"] == "active"
    assert order["intent"] == "order"
    assert order["priority"] == "stat"
    assert order["code"]["coding"][0]["code"] == "24331-1"
    assert order["authoredOn"] == "2025-01-01T10:15:00-05:00"
    requester = next(
        e
        for e in entries(conversion, "Practitioner")
        if e["request"]["ifNoneExist"].endswith("EHR|1234")
    )
    assert order["requester"] == {"reference": requester["fullUrl"], "display": "DR MARCUS WELBY"}
    assert order["subject"] == {"reference": entry_of(conversion, "Patient")["fullUrl"]}
    assert order["encounter"] == {"reference": entry_of(conversion, "Encounter")["fullUrl"]}
    assert order["reasonCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    assert order["note"] == [{"text": "Patient fasting"}]
    # an order message does not overwrite registration's patient and visit
    assert entry_of(conversion, "Patient")["request"]["method"] == "POST"
    assert entry_of(conversion, "Encounter")["request"]["method"] == "POST"


@pytest.mark.parametrize(
    ("control", "status", "expected"),
    [
        ("NW", "", "active"),
        ("CA", "", "active"),  # a cancel request, per the IG, until confirmed
        ("CA", "CA", "revoked"),
        ("CR", "", "revoked"),
        ("DC", "", "revoked"),
        ("OC", "", "revoked"),
        ("HD", "HD", "on-hold"),
        ("XO", "", "unknown"),
        ("SC", "CM", "completed"),
        ("SC", "IP", "active"),
    ],
)
def test_status_from_order_control_and_status(control: str, status: str, expected: str) -> None:
    conversion = order_message(control, status=status)
    assert entry_of(conversion, "ServiceRequest")["resource"]["status"] == expected


def test_status_change_updates_the_same_order() -> None:
    new, cancelled = order_message("NW"), order_message("CA", status="CA")
    assert (
        entry_of(new, "ServiceRequest")["request"]
        == entry_of(cancelled, "ServiceRequest")["request"]
    )


def test_oml_with_two_orders() -> None:
    conversion = convert(
        message(
            msh("OML^O21^OML_O21"),
            pid(),
            segment("ORC", {1: "NW", 2: "A1^EHR"}),
            segment("OBR", {1: "1", 4: "2093-3^Cholesterol^LN"}),
            segment("ORC", {1: "NW", 2: "A2^EHR"}),
            segment("OBR", {1: "2", 4: "718-7^Hemoglobin^LN"}),
        )
    )
    urls = [e["request"]["url"] for e in entries(conversion, "ServiceRequest")]
    assert urls == [
        "ServiceRequest?identifier=urn:ehr:hl7v2:EHR|A1",
        "ServiceRequest?identifier=urn:ehr:hl7v2:EHR|A2",
    ]


def test_order_without_numbers_is_refused() -> None:
    with pytest.raises(ConversionError) as raised:
        convert(message(msh("ORM^O01"), pid(), segment("ORC", {1: "NW"}), segment("OBR", {1: "1"})))
    assert raised.value.location == "ORC-2"
