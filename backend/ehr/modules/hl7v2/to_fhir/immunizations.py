"""ORC/RXA/RXR -> Immunization (IG segment maps RXA[Immunization], RXR[Immunization],
ORC[Immunization]; vocabulary CompletionStatus, RouteOfAdministration, BodyParts).

Key: the filler order number ORC-3 (else placer ORC-2). A VXU without ORC (v2.3 style) keys on
the patient, the administration time RXA-3 and the vaccine code RXA-5
(``urn:ehr:hl7v2:immunization`` | uuid5 of the three).

Status: RXA-21 action code ``D`` -> ``entered-in-error``; else RXA-20 through CompletionStatus
(absent -> ``completed``). RXA-3 (administration time) and RXA-5 (vaccine) are required and
RXA-3 is strict. A dose amount of ``999`` (unknown, CDC IIS guide) is left out.
"""

from __future__ import annotations

import uuid
from typing import Final

from ehr.modules.hl7v2.parsing import Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    code_system,
    codeable_concept,
    mapped,
    number,
    practitioner_reference,
    quantity,
)
from ehr.modules.hl7v2.to_fhir.fields import component, component_text, repetitions, value
from ehr.modules.hl7v2.to_fhir.identifiers import LOCAL_PREFIX
from ehr.modules.hl7v2.to_fhir.orders import order_numbers
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import BODY_PART, COMPLETION_STATUS, ROUTE

__all__ = ["immunization", "immunization_status"]

_FUNCTION: Final = "http://terminology.hl7.org/CodeSystem/v2-0443"
_IMMUNIZATION_KEYS: Final = uuid.UUID("9a4b2c6d-1e3f-5a7b-8c9d-0e1f2a3b4c5d")


def immunization_status(rxa: Segment) -> str:
    """Immunization.status from RXA-21 and RXA-20 (see the module docstring)."""
    if value(rxa, 21).upper() == "D":
        return "entered-in-error"
    target = mapped(value(rxa, 20), COMPLETION_STATUS)
    return target.code if target else "completed"


def immunization(
    orc: Segment | None,
    rxa: Segment,
    rxr: Segment | None,
    patient_ref: PatientRef,
    encounter: str | None,
    assembly: Assembly,
) -> str:
    """Write the Immunization of an RXA (with its ORC and RXR); returns its placeholder."""
    occurrence = assembly.date_time(value(rxa, 3), "RXA-3")
    if occurrence is None:
        raise ConversionError("no administration date/time", "RXA-3")
    vaccine_rep = rxa.first(5)
    vaccine = codeable_concept(vaccine_rep, assembly)
    if vaccine is None or vaccine_rep is None:
        raise ConversionError("no vaccine code", "RXA-5")
    numbers = order_numbers(orc, None, assembly)
    key = numbers.filler or numbers.placer
    if key is None:
        digest = uuid.uuid5(
            _IMMUNIZATION_KEYS, f"{patient_ref.key}|{occurrence}|{component_text(vaccine_rep, 1)}"
        )
        key = {"system": f"{LOCAL_PREFIX}immunization", "value": str(digest)}
    status = immunization_status(rxa)
    amount = number(value(rxa, 6))
    manufacturer = rxa.first(17)
    source = rxa.first(9)
    source_code = component(source, 1) if source is not None else ""
    performers: list[Resource] = [
        {
            "function": {"coding": [{"system": _FUNCTION, "code": "AP"}]},
            "actor": actor,
        }
        for rep in repetitions(rxa, 10)
        if (actor := practitioner_reference(rep, assembly, "RXA-10")) is not None
    ]
    ordering = practitioner_reference(orc.first(12), assembly, "ORC-12") if orc else None
    if ordering is not None:
        performers.append(
            {"function": {"coding": [{"system": _FUNCTION, "code": "OP"}]}, "actor": ordering}
        )
    resource: Resource = {
        "identifier": [numbers.placer, numbers.filler],
        "status": status,
        "statusReason": codeable_concept(rxa.first(18), assembly) if status == "not-done" else None,
        "vaccineCode": vaccine,
        "patient": patient_ref.reference,
        "encounter": {"reference": encounter} if encounter else None,
        "occurrenceDateTime": occurrence,
        "recorded": assembly.date_time(value(orc, 9), "ORC-9", strict=False) if orc else None,
        "primarySource": {"00": True, "01": False}.get(source_code)
        if source_code.isdigit()
        else None,
        "reportOrigin": codeable_concept(source, assembly)
        if source is not None and source_code not in {"", "00"}
        else None,
        "manufacturer": {
            "identifier": {
                "system": code_system(component(manufacturer, 3), assembly),
                "value": component_text(manufacturer, 1),
            },
            "display": component_text(manufacturer, 2),
        }
        if manufacturer is not None and component_text(manufacturer, 1)
        else None,
        "lotNumber": value(rxa, 15),
        "expirationDate": assembly.date(value(rxa, 16), "RXA-16", strict=False),
        "site": codeable_concept(rxr.first(2), assembly, table="0163", concept_map=BODY_PART)
        if rxr
        else None,
        "route": codeable_concept(rxr.first(1), assembly, table="0162", concept_map=ROUTE)
        if rxr
        else None,
        "doseQuantity": quantity(amount, rxa.first(7), assembly)
        if amount is not None and amount != 999
        else None,
        "performer": performers,
        "reasonCode": [codeable_concept(rep, assembly) for rep in repetitions(rxa, 19)],
    }
    if (
        manufacturer is not None
        and component_text(manufacturer, 1)
        and not component(manufacturer, 3)
    ):
        resource["manufacturer"]["identifier"]["system"] = "http://hl7.org/fhir/sid/mvx"
    return assembly.put(
        "Immunization",
        {"system": key["system"], "value": key["value"]},
        resource,
        location="ORC-3" if orc else "RXA-3",
    )
