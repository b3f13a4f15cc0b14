"""Outbound ORU^R01 and ADT^A08 from FHIR resources, re-parsed with the inbound parser and
checked field by field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ehr.modules.hl7v2.from_fhir import OutboundMappingError, adt_a08, oru_r01
from ehr.modules.hl7v2.parsing import Message, Segment, parse_message

WHEN = dt.datetime(2026, 3, 1, 10, 11, 12, tzinfo=dt.UTC)
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MSH_PARAMS: dict[str, Any] = {
    "sending_application": "EHR",
    "sending_facility": "HOSP",
    "receiving_application": "LIS",
    "receiving_facility": "LAB",
    "control_id": "OUT0001",
    "timestamp": WHEN,
}


def make_patient(**overrides: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [
            {
                "system": "urn:oid:2.16.840.1.113883.19.5",
                "value": "MRN-1",
                "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
            }
        ],
        "name": [{"use": "official", "family": "Doe", "given": ["Jane", "Q", "R"]}],
        "gender": "female",
        "birthDate": "1980-02-29",
    }
    patient.update(overrides)
    return patient


def make_observation(**overrides: Any) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}]},
        "effectiveDateTime": "2026-03-01T08:00:00+01:00",
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    }
    observation.update(overrides)
    return observation


def make_report(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "identifier": [
            {
                "system": "urn:ehr:hl7v2:LAB",
                "value": "F-77",
                "type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "24323-8", "display": "Metabolic panel"}]},
        "effectiveDateTime": "2026-03-01T08:00:00+01:00",
        "issued": "2026-03-01T09:30:00.250Z",
    }
    report.update(overrides)
    return report


def make_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "s1",
        "identifier": [
            {
                "system": "urn:oid:1.2.3.4",
                "value": "P-12",
                "type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
            }
        ],
    }
    order.update(overrides)
    return order


def oru(
    *,
    patient: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    observations: list[dict[str, Any]] | None = None,
    service_request: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Message:
    text = oru_r01(
        patient=patient or make_patient(),
        report=report or make_report(),
        observations=observations if observations is not None else [make_observation()],
        service_request=service_request,
        **{**MSH_PARAMS, **kwargs},
    )
    assert text.endswith("\r")
    return parse_message(text)


def adt(patient: dict[str, Any] | None = None, encounter: dict[str, Any] | None = None) -> Message:
    text = adt_a08(patient=patient or make_patient(), encounter=encounter, **MSH_PARAMS)
    return parse_message(text)


def only(message: Message, name: str) -> Segment:
    segments = message.segments(name)
    assert len(segments) == 1, [s.name for s in message]
    return segments[0]


# --------------------------------------------------------------------------- ORU^R01


def test_oru_structure_and_header() -> None:
    message = oru(service_request=make_order())

    assert [s.name for s in message] == ["MSH", "PID", "ORC", "OBR", "OBX"]
    header = message.header
    assert (header.message_type, header.trigger_event, header.structure) == (
        "ORU",
        "R01",
        "ORU_R01",
    )
    assert header.version == "2.5.1"
    assert header.control_id == "OUT0001"
    assert header.timestamp == "20260301101112+0000"
    assert (header.sending_application, header.receiving_facility) == ("EHR", "LAB")
    assert header.processing_id == "P"
    assert not header.enhanced_mode
    assert header.character_set == ""


def test_enhanced_mode_only_when_asked() -> None:
    header = oru(accept_ack="AL").header
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "NE")
    header = oru(accept_ack="AL", application_ack="ER").header
    assert header.application_ack_type == "ER"
    with pytest.raises(ValueError, match="table 0155"):
        oru(accept_ack="YES")


def test_orc_and_obr_identifiers_status_and_times() -> None:
    message = oru(service_request=make_order())

    orc = only(message, "ORC")
    obr = only(message, "OBR")
    assert orc.value(1) == "RE"
    for seg in (orc, obr):
        assert [seg.value(2, n) for n in range(1, 5)] == ["P-12", "", "1.2.3.4", "ISO"]
        assert [seg.value(3, n) for n in range(1, 3)] == ["F-77", "LAB"]
    assert (obr.value(4, 1), obr.value(4, 2), obr.value(4, 3)) == (
        "24323-8",
        "Metabolic panel",
        "LN",
    )
    assert obr.value(7) == "20260301080000+0100"
    assert obr.value(22) == "20260301093000.250+0000"
    assert obr.value(25) == "F"


def test_filler_falls_back_to_the_report_id_under_our_namespace() -> None:
    obr = only(oru(report=make_report(identifier=[])), "OBR")
    assert not obr.has(2)
    assert (obr.value(3, 1), obr.value(3, 2)) == ("r1", "EHR")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("final", "F"),
        ("corrected", "C"),
        ("amended", "C"),
        ("preliminary", "P"),
        ("cancelled", "X"),
        ("partial", "R"),
    ],
)
def test_report_status_is_obr_25(status: str, code: str) -> None:
    assert only(oru(report=make_report(status=status)), "OBR").value(25) == code


def test_a_report_status_without_v2_code_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        oru(report=make_report(status="entered-in-error"))
    assert caught.value.element == "DiagnosticReport.status"


def test_quantity_is_nm_with_ucum_units_range_and_interpretation() -> None:
    observation = make_observation(
        referenceRange=[{"low": {"value": 3.9}, "high": {"value": 6.1}}],
        interpretation=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "N",
                        "display": "Normal",
                    }
                ]
            }
        ],
    )
    obx = only(oru(observations=[observation]), "OBX")

    assert obx.value(1) == "1"
    assert obx.value(2) == "NM"
    assert (obx.value(3, 1), obx.value(3, 3)) == ("2345-7", "LN")
    assert obx.value(5) == "5.4"
    assert (obx.value(6, 1), obx.value(6, 2), obx.value(6, 3)) == ("mmol/L", "mmol/L", "UCUM")
    assert obx.value(7) == "3.9-6.1"
    assert obx.value(8) == "N"  # IS in 2.5.1: the bare table 0078 code
    assert obx.value(8, 2) == ""
    assert obx.value(11) == "F"
    assert obx.value(14) == "20260301080000+0100"


def test_a_corrected_observation_is_obx_11_c() -> None:
    obx = only(oru(observations=[make_observation(status="corrected")]), "OBX")
    assert obx.value(11) == "C"


@pytest.mark.parametrize(
    ("status", "code"),
    [("preliminary", "P"), ("cancelled", "X"), ("entered-in-error", "W"), ("amended", "C")],
)
def test_observation_status_is_obx_11(status: str, code: str) -> None:
    assert only(oru(observations=[make_observation(status=status)]), "OBX").value(11) == code


def test_unknown_observation_status_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        oru(observations=[make_observation(status="unknown")])
    assert caught.value.element == "Observation.status"


def value_of(**value: Any) -> Segment:
    observation = make_observation()
    del observation["valueQuantity"]
    observation.update(value)
    return only(oru(observations=[observation]), "OBX")


def test_value_types() -> None:
    obx = value_of(valueString="negative")
    assert (obx.value(2), obx.value(5)) == ("ST", "negative")

    obx = value_of(valueString="x" * 300)
    assert (obx.value(2), obx.value(5)) == ("TX", "x" * 300)

    obx = value_of(valueString="line one\nline two | ^")
    assert obx.value(2) == "FT"
    assert obx.value(5) == "line one\rline two | ^"

    obx = value_of(
        valueCodeableConcept={
            "coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Neg"}],
            "text": "Negative",
        }
    )
    assert obx.value(2) == "CWE"
    rep = obx.first(5)
    assert rep is not None
    assert (rep.value(1), rep.value(2), rep.value(3), rep.value(9)) == (
        "260385009",
        "Neg",
        "SCT",
        "Negative",
    )

    obx = value_of(valueBoolean=True)
    assert (obx.value(2), obx.value(5, 1), obx.value(5, 3)) == ("CWE", "Y", "HL70136")
    assert value_of(valueBoolean=False).value(5, 1) == "N"

    obx = value_of(valueDateTime="2026-02-01T07:00:00-05:00")
    assert (obx.value(2), obx.value(5)) == ("DTM", "20260201070000-0500")
    obx = value_of(valueDateTime="2026-02-01")
    assert (obx.value(2), obx.value(5)) == ("DT", "20260201")

    obx = value_of(valueRange={"low": {"value": 1, "unit": "mg"}, "high": {"value": 2.5}})
    assert obx.value(2) == "SN"
    assert [obx.value(5, n) for n in range(1, 5)] == ["", "1", "-", "2.5"]
    assert (obx.value(6, 1), obx.value(6, 2)) == ("", "mg")

    obx = value_of(valueRatio={"numerator": {"value": 1}, "denominator": {"value": 128}})
    assert obx.value(2) == "SN"
    assert [obx.value(5, n) for n in range(1, 5)] == ["", "1", ":", "128"]

    obx = value_of(valueQuantity={"value": 0.00001, "comparator": "<", "unit": "g"})
    assert obx.value(2) == "SN"
    assert (obx.value(5, 1), obx.value(5, 2)) == ("<", "0.00001")
    assert (obx.value(6, 1), obx.value(6, 2)) == ("", "g")

    obx = value_of(valueInteger=7)
    assert (obx.value(2), obx.value(5)) == ("NM", "7")

    obx = value_of()
    assert not obx.has(2)
    assert not obx.has(5)


def test_an_unmappable_value_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        value_of(valueSampledData={"origin": {"value": 0}, "period": 1, "dimensions": 1})
    assert caught.value.element == "Observation.valueSampledData"


def test_components_become_obx_with_sub_ids_and_notes_become_nte() -> None:
    pressure = make_observation(
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        note=[{"text": "Left arm\nseated"}],
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": UCUM},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 80, "unit": "mm[Hg]", "system": UCUM},
            },
        ],
    )
    del pressure["valueQuantity"]
    message = oru(observations=[make_observation(), pressure])

    assert [s.name for s in message][4:] == ["OBX", "OBX", "NTE", "OBX", "OBX"]
    obxs = message.segments("OBX")
    assert [o.value(1) for o in obxs] == ["1", "2", "3", "4"]
    assert [o.value(4) for o in obxs] == ["", "2", "2.1", "2.2"]
    assert [o.value(3) for o in obxs] == ["2345-7", "85354-9", "8480-6", "8462-4"]
    assert obxs[2].value(5) == "120"
    assert obxs[2].value(11) == "F"
    nte = only(message, "NTE")
    assert (nte.value(1), nte.value(2), nte.value(3)) == ("1", "L", "Left arm\rseated")


def test_conclusion_is_an_nte_after_obr() -> None:
    message = oru(report=make_report(conclusion="All normal"))
    names = [s.name for s in message]
    assert names[names.index("OBR") + 1] == "NTE"
    assert only(message, "NTE").value(3) == "All normal"


def test_pv1_in_oru_when_an_encounter_is_given() -> None:
    encounter = {"resourceType": "Encounter", "class": {"code": "AMB"}}
    message = oru(encounter=encounter)
    assert [s.name for s in message][:3] == ["MSH", "PID", "PV1"]
    assert only(message, "PV1").value(2) == "O"


def test_an_observation_about_another_patient_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        oru(observations=[make_observation(subject={"reference": "Patient/zz-999"})])
    assert caught.value.element == "Observation.subject"
    assert "zz-999" not in str(caught.value)


def test_missing_codes_are_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        oru(report=make_report(code={}))
    assert caught.value.element == "DiagnosticReport.code"
    with pytest.raises(OutboundMappingError) as caught:
        oru(observations=[make_observation(code={"text": ""})])
    assert caught.value.element == "Observation.code"


def test_non_ascii_declares_utf8() -> None:
    patient = make_patient(name=[{"family": "Müller", "given": ["Zoë"]}])
    message = oru(patient=patient)
    assert message.header.character_set == "UNICODE UTF-8"
    assert only(message, "PID").value(5, 1) == "Müller"


# --------------------------------------------------------------------------- ADT^A08 / PID


def test_adt_a08_structure_and_evn() -> None:
    message = adt(make_patient(meta={"lastUpdated": "2026-02-28T17:00:00.123+00:00"}))
    assert [s.name for s in message] == ["MSH", "EVN", "PID", "PV1"]
    assert (message.header.message_type, message.header.trigger_event) == ("ADT", "A08")
    assert message.header.structure == "ADT_A01"
    evn = only(message, "EVN")
    assert (evn.value(1), evn.value(2)) == ("A08", "20260228170000.123+0000")
    pv1 = only(message, "PV1")
    assert (pv1.value(1), pv1.value(2)) == ("1", "N")
    assert len(pv1.fields) == 3


def test_evn_2_defaults_to_the_message_time() -> None:
    assert only(adt(), "EVN").value(2) == "20260301101112+0000"


def test_identifier_systems_are_reversed_exactly() -> None:
    patient = make_patient(
        identifier=[
            {
                "system": "urn:oid:2.16.840.1.113883.19.5",
                "value": "MRN-1",
                "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                "period": {"start": "2020-01-01", "end": "2030-12-31T00:00:00Z"},
            },
            {"system": "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", "value": "U-2"},
            {"system": "urn:ehr:hl7v2:HOSP", "value": "H-3"},
            {
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": "999-99-9999",
                "type": {"coding": [{"system": V2_0203, "code": "SS"}]},
            },
            {"value": "NO-SYSTEM"},
            {"system": "urn:ehr:hl7v2:HOSP", "value": "   "},
        ]
    )
    reps = only(adt(patient), "PID").repetitions(3)

    assert len(reps) == 5
    mrn, uuid_id, local, ssn, bare = reps
    assert mrn.value(1) == "MRN-1"
    assert mrn.component(4) == ("", "2.16.840.1.113883.19.5", "ISO")
    assert mrn.value(5) == "MR"
    assert (mrn.value(7), mrn.value(8)) == ("20200101", "20301231")
    assert uuid_id.component(4) == ("", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "UUID")
    assert local.component(4) == ("HOSP",)
    assert ssn.component(4) == ("SSA", "2.16.840.1.113883.4.1", "ISO")  # the registry HD
    assert ssn.value(5) == "SS"
    assert (bare.value(1), bare.component(4)) == ("NO-SYSTEM", ())


def test_a_patient_without_identifier_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        adt(make_patient(identifier=[{"system": "urn:oid:1.2"}]))
    assert (caught.value.element, caught.value.reason) == (
        "Patient.identifier",
        "the Patient has no identifier with a value for PID-3",
    )


def test_a_patient_without_a_name_is_refused() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        adt(make_patient(name=[{"text": "Jane Doe"}]))
    assert caught.value.element == "Patient.name"


def test_separators_in_a_patient_name_survive_the_round_trip() -> None:
    nasty = "O'Brien|Smith^Jr~x\\y&z"
    patient = make_patient(
        name=[
            {"use": "official", "family": nasty, "given": ["Ann\rMSH|^~\\&|EVIL"]},
            {"use": "maiden", "family": "Roe", "prefix": ["Dr", "Prof"], "suffix": ["Jr", "MD"]},
        ]
    )
    message = adt(patient)
    assert [s.name for s in message] == ["MSH", "EVN", "PID", "PV1"]
    official, maiden = only(message, "PID").repetitions(5)
    assert official.value(1) == nasty
    assert official.value(2) == "Ann\rMSH|^~\\&|EVIL"
    assert official.value(7) == "L"
    assert (maiden.value(1), maiden.value(4), maiden.value(5), maiden.value(6)) == (
        "Roe",
        "Jr",
        "Dr Prof",
        "MD",
    )
    assert maiden.value(7) == "M"


def test_pid_demographics() -> None:
    patient = make_patient(
        birthDate="1980-02-29",
        _birthDate={
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1980-02-29T04:05:00-05:00",
                }
            ]
        },
        gender="other",
        address=[
            {
                "use": "home",
                "line": ["1 Main St", "Apt 2"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "USA",
                "district": "Sangamon",
            },
            {"type": "postal", "line": ["PO Box 9"]},
        ],
        telecom=[
            {"system": "phone", "value": "+1 555 0100", "use": "home", "rank": 1},
            {"system": "phone", "value": "+1 555 0199", "use": "mobile"},
            {"system": "email", "value": "jane@example.org"},
            {"system": "phone", "value": "+1 555 0142", "use": "work"},
        ],
        deceasedDateTime="2026-01-02T03:04:05Z",
    )
    pid = only(adt(patient), "PID")

    assert pid.value(1) == "1"
    assert pid.value(7) == "19800229040500-0500"
    assert pid.value(8) == "O"
    home, postal = pid.repetitions(11)
    assert [home.value(n) for n in range(1, 8)] == [
        "1 Main St",
        "Apt 2",
        "Springfield",
        "IL",
        "62701",
        "USA",
        "H",
    ]
    assert home.value(9) == "Sangamon"
    assert (postal.value(1), postal.value(7)) == ("PO Box 9", "M")
    phone, mobile, email = pid.repetitions(13)
    assert (phone.value(1), phone.value(2), phone.value(3), phone.value(18)) == (
        "+1 555 0100",
        "PRN",
        "PH",
        "1",
    )
    assert (mobile.value(2), mobile.value(3)) == ("PRS", "CP")
    assert (email.value(1), email.value(2), email.value(3), email.value(4)) == (
        "",
        "NET",
        "Internet",
        "jane@example.org",
    )
    (work,) = pid.repetitions(14)
    assert (work.value(1), work.value(2)) == ("+1 555 0142", "WPN")
    assert pid.value(29) == "20260102030405+0000"
    assert pid.value(30) == "Y"


@pytest.mark.parametrize(
    ("gender", "code"), [("male", "M"), ("female", "F"), ("other", "O"), ("unknown", "U")]
)
def test_administrative_sex(gender: str, code: str) -> None:
    assert only(adt(make_patient(gender=gender)), "PID").value(8) == code


def test_birth_date_and_deceased_boolean() -> None:
    pid = only(adt(make_patient(birthDate="1980-02", deceasedBoolean=False)), "PID")
    assert pid.value(7) == "198002"
    assert not pid.has(29)
    assert pid.value(30) == "N"


def test_a_malformed_date_names_the_element() -> None:
    with pytest.raises(OutboundMappingError) as caught:
        adt(make_patient(birthDate="29/02/1980"))
    assert caught.value.element == "Patient.birthDate"
    assert "29/02" not in str(caught.value)


def test_pv1_from_the_encounter() -> None:
    encounter = {
        "resourceType": "Encounter",
        "subject": {"reference": "Patient/p1"},
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
        },
        "identifier": [
            {"system": "urn:ehr:hl7v2:HOSP", "value": "ACC-1"},
            {
                "system": "urn:ehr:hl7v2:HOSP",
                "value": "V-9",
                "type": {"coding": [{"system": V2_0203, "code": "VN"}]},
            },
        ],
        "period": {"start": "2026-02-27T22:00:00+01:00", "end": "2026-03-01T09:00:00+01:00"},
    }
    pv1 = only(adt(encounter=encounter), "PV1")
    assert pv1.value(2) == "I"
    assert (pv1.value(19, 1), pv1.value(19, 4), pv1.value(19, 5)) == ("V-9", "HOSP", "VN")
    assert pv1.value(44) == "20260227220000+0100"
    assert pv1.value(45) == "20260301090000+0100"


@pytest.mark.parametrize(
    ("code", "patient_class"), [("EMER", "E"), ("AMB", "O"), ("PRENC", "P"), ("VR", "U")]
)
def test_patient_class(code: str, patient_class: str) -> None:
    pv1 = only(adt(encounter={"resourceType": "Encounter", "class": {"code": code}}), "PV1")
    assert pv1.value(2) == patient_class


def test_control_id_is_checked() -> None:
    with pytest.raises(ValueError, match="control_id"):
        adt_a08(patient=make_patient(), encounter=None, **{**MSH_PARAMS, "control_id": "x" * 21})
