"""The CDS services we offer: their definitions (hook, prefetch templates, required context)
and the discovery document.

Services (id = hook name; discovery lists all but the legacy ones):

``patient-view``     reminders: care gaps (immunizations, screenings, monitoring), latest blood
                     pressure / HbA1c out of range, active high-criticality allergies, and
                     drug-drug / drug-allergy / duplicate issues already in the medication list.
``order-select``     medication safety of the selected draft orders (against the record and the
                     other drafts) and duplicate ServiceRequests of the last 24 hours.
``order-sign``       the same for every draft order; leaves out the cards order-select already
                     showed for the same draft and issue (remembered in Redis for
                     ``shown_card_ttl_seconds``; when Redis is down, cards are repeated rather
                     than lost).
``encounter-start``  the care gaps to close during the visit, with draft orders as suggestions.
``encounter-discharge`` issues in the current medication list and the care gaps still open.
``appointment-book`` the care gaps to plan into the appointment.
``allergyintolerance-create`` active medications against the allergy being recorded.
``problem-list-item-create`` a problem being added that the problem list already holds.
``medication-refill`` order-sign's medication checks for the refills (each replaces its own
                     active order, so a refill never "interacts" with itself).
``order-dispatch``   orders sent to a performer: a dispatched order that is not active (or is
                     another patient's), a fulfillment Task that is not for a dispatched order.
``medication-prescribe`` (deprecated in 2.0) and ``order-review`` (withdrawn before 1.0): not
                     advertised; answered like order-sign for older clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ehr.core.errors import NotFoundError
from ehr.modules.care_gaps import OBSERVATION_CODES
from ehr.modules.cds_hooks.schemas import CdsService, Discovery

__all__ = [
    "PREFETCH_TEMPLATES",
    "SERVICES",
    "ServiceDefinition",
    "discovery",
    "service_definition",
]

_P: Final = "{{context.patientId}}"
PREFETCH_TEMPLATES: Final[Mapping[str, str]] = {
    "patient": f"Patient/{_P}",
    "medicationRequests": (
        f"MedicationRequest?patient={_P}&status=active,on-hold"
        "&_include=MedicationRequest:medication&_count=100"
    ),
    "medicationStatements": (
        f"MedicationStatement?patient={_P}&status=active,intended,on-hold"
        "&_include=MedicationStatement:medication&_count=100"
    ),
    "allergies": f"AllergyIntolerance?patient={_P}&_count=100",
    "immunizations": f"Immunization?patient={_P}&_count=200",
    "observations": (
        f"Observation?patient={_P}&code={','.join(OBSERVATION_CODES)}&_sort=-date&_count=100"
    ),
    "procedures": f"Procedure?patient={_P}&_count=200",
    "conditions": f"Condition?patient={_P}&_count=100",
    "serviceRequests": f"ServiceRequest?patient={_P}&_sort=-authored&_count=50",
}


def _templates(*keys: str) -> dict[str, str]:
    return {key: PREFETCH_TEMPLATES[key] for key in keys}


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    # Context fields the hook requires (spec / hooks library) → expected JSON type.
    context: Mapping[str, type | tuple[type, ...]]
    advertised: bool = True
    usage_requirements: str | None = None

    def to_discovery(self) -> CdsService:
        return CdsService(
            hook=self.hook,
            id=self.id,
            title=self.title,
            description=self.description,
            prefetch=dict(self.prefetch),
            usage_requirements=self.usage_requirements,
        )


_ORDERS_PREFETCH: Final = _templates(
    "patient", "medicationRequests", "medicationStatements", "allergies", "serviceRequests"
)
_CARE_GAP_PREFETCH: Final = _templates(
    "patient", "immunizations", "observations", "procedures", "conditions"
)
_PATIENT_VIEW_PREFETCH: Final = _templates(
    "patient",
    "medicationRequests",
    "medicationStatements",
    "allergies",
    "immunizations",
    "observations",
    "procedures",
    "conditions",
)
SERVICES: Final[Mapping[str, ServiceDefinition]] = {
    s.id: s
    for s in (
        ServiceDefinition(
            id="patient-view",
            hook="patient-view",
            title="Patient reminders",
            description=(
                "Care gaps (immunizations, cancer screenings, diabetes monitoring), the latest "
                "blood pressure and HbA1c when out of range, active high-criticality allergies, "
                "and drug-drug, drug-allergy and duplicate-therapy issues in the current "
                "medication list."
            ),
            prefetch=_PATIENT_VIEW_PREFETCH,
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="order-select",
            hook="order-select",
            title="Medication safety and duplicate orders (selection)",
            description=(
                "Checks the selected draft orders: drug-drug interactions, drug-allergy "
                "(with cross-sensitivity) and duplicate therapy against the patient's active "
                "medications, allergies and the other drafts; lab and imaging orders repeating "
                "one placed in the last 24 hours. Suggests removing or replacing the order."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={
                "userId": str,
                "patientId": str,
                "selections": list,
                "draftOrders": dict,
            },
        ),
        ServiceDefinition(
            id="order-sign",
            hook="order-sign",
            title="Medication safety and duplicate orders (signing)",
            description=(
                "The checks of order-select on every draft order at signing, without repeating "
                "cards order-select already showed for the same draft."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={"userId": str, "patientId": str, "draftOrders": dict},
        ),
        ServiceDefinition(
            id="encounter-start",
            hook="encounter-start",
            title="Care gaps for this visit",
            description=(
                "Immunizations, cancer screenings and diabetes monitoring due, each with a "
                "draft order to close the gap during the visit."
            ),
            prefetch=_CARE_GAP_PREFETCH,
            context={"userId": str, "patientId": str, "encounterId": str},
        ),
        ServiceDefinition(
            id="encounter-discharge",
            hook="encounter-discharge",
            title="Discharge check",
            description=(
                "Before discharge: drug-drug, drug-allergy and duplicate-therapy issues in the "
                "current medication list, and the care gaps still open."
            ),
            prefetch=_PATIENT_VIEW_PREFETCH,
            context={"userId": str, "patientId": str, "encounterId": str},
        ),
        ServiceDefinition(
            id="appointment-book",
            hook="appointment-book",
            title="Care gaps to close at the appointment",
            description=(
                "Immunizations, cancer screenings and diabetes monitoring due, so they can be "
                "planned into the appointment being booked."
            ),
            prefetch=_CARE_GAP_PREFETCH,
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="allergyintolerance-create",
            hook="allergyintolerance-create",
            title="Active medications against a new allergy",
            description=(
                "When an allergy is recorded: the patient's active medications that contain "
                "the allergen or a cross-reacting drug."
            ),
            prefetch=_templates(
                "patient", "medicationRequests", "medicationStatements", "allergies"
            ),
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="problem-list-item-create",
            hook="problem-list-item-create",
            title="Problem already on the problem list",
            description=(
                "When a problem is added: whether the patient's problem list already holds it "
                "(active, recurring or relapsed; same code), so it is updated, not duplicated."
            ),
            prefetch=_templates("patient", "conditions"),
            context={"userId": str, "patientId": str, "conditions": dict},
        ),
        ServiceDefinition(
            id="medication-refill",
            hook="medication-refill",
            title="Medication safety at refill",
            description=(
                "Checks the medications being refilled against the rest of the active "
                "medications and the allergies (drug-drug, drug-allergy, duplicate therapy)."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={"userId": str, "patientId": str, "medications": dict},
        ),
        ServiceDefinition(
            id="order-dispatch",
            hook="order-dispatch",
            title="Orders dispatched to a performer",
            description=(
                "When orders are sent for fulfillment: a dispatched order that is not active "
                "(draft, on hold, revoked, completed) or is another patient's, and fulfillment "
                "tasks that are not for a dispatched order."
            ),
            prefetch=_templates("patient", "serviceRequests", "medicationRequests"),
            context={"patientId": str, "performer": str},
        ),
        ServiceDefinition(
            id="medication-prescribe",
            hook="medication-prescribe",
            title="Medication safety (deprecated hook)",
            description="order-sign's medication checks for clients still on medication-prescribe.",
            prefetch=_ORDERS_PREFETCH,
            context={"patientId": str, "medications": (dict, list)},
            advertised=False,
        ),
        ServiceDefinition(
            id="order-review",
            hook="order-review",
            title="Order checks (withdrawn hook)",
            description="order-sign's checks for clients still on the pre-1.0 order-review hook.",
            prefetch=_ORDERS_PREFETCH,
            context={"patientId": str, "orders": dict},
            advertised=False,
        ),
    )
}


def service_definition(service_id: str) -> ServiceDefinition:
    found = SERVICES.get(service_id)
    if found is None:
        raise NotFoundError(f"No CDS service with id {service_id!r}")
    return found


def discovery() -> Discovery:
    return Discovery(services=[s.to_discovery() for s in SERVICES.values() if s.advertised])
