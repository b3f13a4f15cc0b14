"""An order document as the draft FHIR resource it becomes (pure: no I/O).

:func:`build_draft` is the one place an order document turns into a ServiceRequest or a
MedicationRequest: the orders API calls it on create and on update of a draft, and the order
sets module calls it for every member, so a hand-entered order and an order-set member are the
same resource. It checks every code (:mod:`.codes`) and raises the chart's 422 refusals.

The draft: ``status`` draft, ``intent`` order, ``subject`` the patient, ``requester`` the user
(``urn:ehr:user`` identifier: principals carry no Practitioner), ``authoredOn`` now (signing
sets it again to the sign time). ServiceRequests carry a category (SNOMED CT 108252007
laboratory procedure, 363679005 imaging, 3457005 patient referral) and, for a referral, the code
3457005 with the specialty as ``performerType``. MedicationRequests carry
``medicationCodeableConcept`` (RxNorm), one ``dosageInstruction`` (doseAndRate doseQuantity in
UCUM, route, timing repeat or asNeeded), ``dispenseRequest`` and ``numberOfRepeatsAllowed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from ehr.modules.clinical_record import check_body_patient, recorder_reference
from ehr.modules.orders.codes import (
    CPT_SYSTEM,
    ICD10CM_SYSTEM,
    LOINC_SYSTEM,
    RXNORM_SYSTEM,
    SNOMED_SYSTEM,
    UCUM_SYSTEM,
    check_code,
    check_dose_unit,
)
from ehr.modules.orders.schemas import (
    CodingIn,
    DoseIn,
    ImagingOrderCreate,
    LabOrderCreate,
    MedicationOrderCreate,
    OrderCreate,
    ReferralOrderCreate,
)
from ehr.platform.auth.principal import Principal

__all__ = [
    "CATEGORY_IMAGING",
    "CATEGORY_LAB",
    "CATEGORY_REFERRAL",
    "KIND_TAG_SYSTEM",
    "build_draft",
    "check_order",
]

CATEGORY_LAB: Final = ("108252007", "Laboratory procedure")
CATEGORY_IMAGING: Final = ("363679005", "Imaging")
CATEGORY_REFERRAL: Final = ("3457005", "Patient referral")
# Our kind of the order, on every order we write (a ServiceRequest's category may be edited by
# other FHIR clients; the kind decides which rules apply).
KIND_TAG_SYSTEM: Final = "urn:ehr:order-kind"

_REASON_SYSTEMS: Final = frozenset({SNOMED_SYSTEM, ICD10CM_SYSTEM})
_LAB_SYSTEMS: Final = frozenset({LOINC_SYSTEM})
_IMAGING_SYSTEMS: Final = frozenset({SNOMED_SYSTEM, LOINC_SYSTEM, CPT_SYSTEM})
_SNOMED: Final = frozenset({SNOMED_SYSTEM})
_RXNORM: Final = frozenset({RXNORM_SYSTEM})


def check_order(patient_id: str, order: OrderCreate) -> None:
    """The rules an order document must pass beyond its schema: the body's patient is the
    path's, and every code is in a system its field takes, with that system's shape."""
    check_body_patient(order.patient_id, patient_id)
    for index, reason in enumerate(order.reason):
        check_code(f"reason[{index}]", reason.system, reason.code, _REASON_SYSTEMS)
    if isinstance(order, LabOrderCreate):
        check_code("code", order.code.system, order.code.code, _LAB_SYSTEMS)
    elif isinstance(order, ImagingOrderCreate):
        check_code("code", order.code.system, order.code.code, _IMAGING_SYSTEMS)
        if order.body_site is not None:
            check_code("body_site", order.body_site.system, order.body_site.code, _SNOMED)
    elif isinstance(order, ReferralOrderCreate):
        check_code("specialty", order.specialty.system, order.specialty.code, _SNOMED)
    else:
        check_code("medication", order.medication.system, order.medication.code, _RXNORM)
        check_code("dosage.route", order.dosage.route.system, order.dosage.route.code, _SNOMED)
        check_dose_unit("dosage.dose", order.dosage.dose.unit)
        if order.dispense is not None:
            check_dose_unit("dispense.quantity", order.dispense.quantity.unit)


def _concept(coding: CodingIn) -> dict[str, Any]:
    entry: dict[str, Any] = {"system": coding.system, "code": coding.code}
    if coding.display is not None:
        entry["display"] = coding.display
    concept: dict[str, Any] = {"coding": [entry]}
    if coding.display is not None:
        concept["text"] = coding.display
    return concept


def _category(code: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"coding": [{"system": SNOMED_SYSTEM, "code": code[0], "display": code[1]}]}]


def _quantity(dose: DoseIn) -> dict[str, Any]:
    return {"value": dose.value, "unit": dose.unit, "system": UCUM_SYSTEM, "code": dose.unit}


def _requester(requester: Principal | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(requester, Principal):
        return recorder_reference(requester)
    return dict(requester)


def _common(
    resource_type: str,
    patient_id: str,
    order: OrderCreate,
    requester: Principal | Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": resource_type,
        "meta": {"tag": [{"system": KIND_TAG_SYSTEM, "code": order.kind}]},
        "status": "draft",
        "intent": "order",
        "priority": order.priority,
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.isoformat(timespec="seconds"),
        "requester": _requester(requester),
    }
    if order.encounter_id is not None:
        resource["encounter"] = {"reference": f"Encounter/{order.encounter_id}"}
    if order.reason:
        resource["reasonCode"] = [_concept(r) for r in order.reason]
    if order.note is not None:
        resource["note"] = [{"text": order.note}]
    return resource


def _medication(resource: dict[str, Any], order: MedicationOrderCreate) -> None:
    resource["medicationCodeableConcept"] = _concept(order.medication)
    dosage = order.dosage
    instruction: dict[str, Any] = {
        "sequence": 1,
        "route": _concept(dosage.route),
        "doseAndRate": [{"doseQuantity": _quantity(dosage.dose)}],
        "timing": {
            "repeat": {
                "frequency": dosage.frequency,
                "period": dosage.period,
                "periodUnit": dosage.period_unit,
            }
        },
    }
    if dosage.as_needed:
        instruction["asNeededBoolean"] = True
    if dosage.text is not None:
        instruction["text"] = dosage.text
    resource["dosageInstruction"] = [instruction]
    dispense: dict[str, Any] = {}
    if order.dispense is not None:
        dispense["quantity"] = _quantity(order.dispense.quantity)
        if order.dispense.supply_days is not None:
            dispense["expectedSupplyDuration"] = {
                "value": order.dispense.supply_days,
                "unit": "days",
                "system": UCUM_SYSTEM,
                "code": "d",
            }
    dispense["numberOfRepeatsAllowed"] = order.repeats
    resource["dispenseRequest"] = dispense


def build_draft(
    patient_id: str,
    order: OrderCreate,
    requester: Principal | Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The draft ServiceRequest / MedicationRequest of ``order`` for ``patient_id``, requested
    by ``requester`` (a principal, or a FHIR Reference as-is). Raises the 422 refusals of
    :func:`check_order` (``unknown_code_system``, ``invalid_code``, ``unit_not_allowed``,
    ``patient_mismatch``). The resource has no id: the caller creates it."""
    check_order(patient_id, order)
    when = now or dt.datetime.now(dt.UTC)
    if isinstance(order, MedicationOrderCreate):
        resource = _common("MedicationRequest", patient_id, order, requester, when)
        _medication(resource, order)
        return resource
    resource = _common("ServiceRequest", patient_id, order, requester, when)
    if isinstance(order, LabOrderCreate):
        resource["category"] = _category(CATEGORY_LAB)
        resource["code"] = _concept(order.code)
    elif isinstance(order, ImagingOrderCreate):
        resource["category"] = _category(CATEGORY_IMAGING)
        resource["code"] = _concept(order.code)
        if order.body_site is not None:
            resource["bodySite"] = [_concept(order.body_site)]
    else:
        resource["category"] = _category(CATEGORY_REFERRAL)
        resource["code"] = {
            "coding": [
                {
                    "system": SNOMED_SYSTEM,
                    "code": CATEGORY_REFERRAL[0],
                    "display": CATEGORY_REFERRAL[1],
                }
            ],
            "text": f"Referral to {order.specialty.display or order.specialty.code}",
        }
        resource["performerType"] = _concept(order.specialty)
        if order.performer is not None:
            performer: dict[str, Any] = {}
            if order.performer.reference is not None:
                performer["reference"] = order.performer.reference
            if order.performer.display is not None:
                performer["display"] = order.performer.display
            if performer:
                resource["performer"] = [performer]
    if isinstance(order, LabOrderCreate | ImagingOrderCreate) and order.occurrence is not None:
        resource["occurrenceDateTime"] = order.occurrence.isoformat()
    return resource
