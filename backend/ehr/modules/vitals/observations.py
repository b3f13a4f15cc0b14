"""The vital-signs profile Observation: built from a measurement, and read back as the API's
document (what the service writes and what every read shows).

Every Observation follows the FHIR R4 vital-signs profile: category ``vital-signs``, a LOINC
code (the catalogue's, and the alias the client sent), status ``final``, ``effectiveDateTime``,
the path's patient as subject and a UCUM ``valueQuantity`` in the canonical unit (a blood
pressure: systolic and diastolic components).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.fhir import codings, reference_parts
from ehr.modules.clinical_record import ENTERED_IN_ERROR
from ehr.modules.vitals.catalogue import DIASTOLIC, LOINC_SYSTEM, SYSTOLIC, VITALS, VitalSign
from ehr.modules.vitals.rules import Measured
from ehr.modules.vitals.schemas import ComponentOut, VitalSignOut
from ehr.modules.vitals.units import UCUM_SYSTEM

__all__ = [
    "CATEGORY_SYSTEM",
    "VITAL_SIGNS_CATEGORY",
    "apply_values",
    "is_patients_vital",
    "loinc_code",
    "observation",
    "quantity_of",
    "search_params",
    "to_vital",
]

CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS_CATEGORY: Final = {
    "coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
    "text": "Vital Signs",
}
_PROFILE_BASE: Final = "http://hl7.org/fhir/StructureDefinition/"
_PROFILES: Final = {
    "85354-9": "bp",
    "8867-4": "heartrate",
    "9279-1": "resprate",
    "8310-5": "bodytemp",
    "2708-6": "oxygensat",
    "29463-7": "bodyweight",
    "8302-2": "bodyheight",
    "39156-5": "bmi",
    "9843-4": "headcircum",
}
# --------------------------------------------------------------------------- FHIR building


def _concept(vital: VitalSign, submitted_code: str | None = None) -> dict[str, Any]:
    coding = [{"system": LOINC_SYSTEM, "code": vital.code, "display": vital.display}]
    for alias in vital.aliases:
        if alias == submitted_code:
            coding.append({"system": LOINC_SYSTEM, "code": alias})
    return {"coding": coding, "text": vital.display}


def _quantity(value: float, vital: VitalSign) -> dict[str, Any]:
    return {
        "value": value,
        "unit": vital.unit_display,
        "system": UCUM_SYSTEM,
        "code": vital.unit,
    }


def apply_values(resource: dict[str, Any], measured: Measured) -> None:
    """Put the measured values on ``resource`` (``valueQuantity`` or the BP components)."""
    resource.pop("valueQuantity", None)
    resource.pop("component", None)
    if measured.systolic is not None and measured.diastolic is not None:
        resource["component"] = [
            {"code": _concept(SYSTOLIC), "valueQuantity": _quantity(measured.systolic, SYSTOLIC)},
            {
                "code": _concept(DIASTOLIC),
                "valueQuantity": _quantity(measured.diastolic, DIASTOLIC),
            },
        ]
    elif measured.value is not None:
        resource["valueQuantity"] = _quantity(measured.value, measured.vital)


def observation(
    patient_id: str,
    measured: Measured,
    *,
    effective: dt.datetime,
    encounter_id: str | None = None,
    derived_from: Sequence[str] = (),
) -> dict[str, Any]:
    """The vital-signs profile Observation of one measurement."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": {
            "profile": [
                f"{_PROFILE_BASE}vitalsigns",
                f"{_PROFILE_BASE}{_PROFILES[measured.vital.code]}",
            ]
        },
        "status": "final",
        "category": [VITAL_SIGNS_CATEGORY],
        "code": _concept(measured.vital, measured.submitted_code),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": effective.isoformat(),
    }
    if encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    apply_values(resource, measured)
    if derived_from:
        resource["derivedFrom"] = [{"reference": ref} for ref in derived_from]
    return resource


# --------------------------------------------------------------------------- reading


def loinc_code(resource: Mapping[str, Any]) -> str:
    found = [c.code for c in codings(resource.get("code")) if c.system == LOINC_SYSTEM]
    for code in found:
        if code in VITALS:
            return VITALS[code].code
    return found[0] if found else ""


def quantity_of(value: object) -> tuple[float | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None
    number = value.get("value")
    code = value.get("code") if isinstance(value.get("code"), str) else value.get("unit")
    return (
        float(number) if isinstance(number, int | float) else None,
        code if isinstance(code, str) else None,
    )


def _parse_datetime(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def to_vital(resource: Mapping[str, Any]) -> VitalSignOut:
    """Our document of a vital-sign Observation."""
    code = loinc_code(resource)
    vital = VITALS.get(code)
    value, unit = quantity_of(resource.get("valueQuantity"))
    components: list[ComponentOut] = []
    for component in resource.get("component") or []:
        if not isinstance(component, Mapping):
            continue
        first = codings(component.get("code"), limit=1)
        c_value, c_unit = quantity_of(component.get("valueQuantity"))
        components.append(
            ComponentOut(
                code=first[0].code if first else "",
                display=first[0].display if first else None,
                value=c_value,
                unit=c_unit,
            )
        )
    encounter = reference_parts(resource.get("encounter"))
    derived = [reference_parts(ref) for ref in resource.get("derivedFrom") or []]
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return VitalSignOut(
        id=str(resource.get("id", "")),
        version=version if isinstance(version, str) else None,
        code=code,
        display=vital.display if vital is not None else None,
        status=str(resource.get("status", "")),
        effective=_parse_datetime(resource.get("effectiveDateTime")),
        value=value,
        unit=unit,
        components=components,
        encounter_id=encounter.resource_id if encounter is not None else None,
        derived_from=[d.resource_id for d in derived if d is not None],
    )


def is_patients_vital(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = reference_parts(resource.get("subject"))
    is_vital = any(
        c.system == CATEGORY_SYSTEM and c.code == "vital-signs"
        for category in resource.get("category") or []
        for c in codings(category)
    )
    return (
        is_vital
        and subject is not None
        and (subject.resource_type, subject.resource_id) == ("Patient", patient_id)
    )


def search_params(patient_id: str) -> list[tuple[str, str]]:
    return [
        ("subject", f"Patient/{patient_id}"),
        ("category", f"{CATEGORY_SYSTEM}|vital-signs"),
        ("status:not", ENTERED_IN_ERROR),
    ]
