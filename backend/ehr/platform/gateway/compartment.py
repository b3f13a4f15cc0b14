"""The Patient compartment as the gateway enforces it for patient-context tokens.

For each resource type in the compartment: the search parameter that pins a search to one patient
(added to every query), the caller-side parameter names that mean the same thing (accepted only
with the principal's own patient as value), and the element of the resource body that must
reference the principal's patient on a write.

This is a deliberate *subset* of FHIR R4's CompartmentDefinition/patient: membership is by the
resource's subject/patient (not performer, author, ...), which can only narrow what is returned.
Types absent from :data:`COMPARTMENT` and from :data:`SHARED_READ_TYPES` are unreachable in
patient context.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ehr.core.errors import PermissionDenied
from ehr.platform.auth.principal import Principal

__all__ = [
    "COMPARTMENT",
    "SHARED_READ_TYPES",
    "CompartmentRule",
    "check_compartment_body",
    "compartment_param",
    "in_patient_context",
    "patient_reachable",
    "patient_reference",
]


@dataclass(frozen=True, slots=True)
class CompartmentRule:
    # The search parameter added to every query (value: "Patient/<id>"; Patient itself: "_id").
    param: str
    # Parameter names a caller may pass, with the principal's own patient as the only value.
    aliases: frozenset[str]
    # Body element(s) that must reference the principal's patient ("a.b" walks lists).
    body_path: str


def _rule(param: str, body_path: str, *extra: str) -> CompartmentRule:
    return CompartmentRule(param, frozenset({param, *extra}), body_path)


_SUBJECT = ("subject",)
COMPARTMENT: Final[Mapping[str, CompartmentRule]] = {
    "Patient": CompartmentRule("_id", frozenset({"_id"}), "id"),
    "Observation": _rule("patient", "subject", *_SUBJECT),
    "Condition": _rule("patient", "subject", *_SUBJECT),
    "Encounter": _rule("patient", "subject", *_SUBJECT),
    "MedicationRequest": _rule("patient", "subject", *_SUBJECT),
    "MedicationDispense": _rule("patient", "subject", *_SUBJECT),
    "MedicationAdministration": _rule("patient", "subject", *_SUBJECT),
    "MedicationStatement": _rule("patient", "subject", *_SUBJECT),
    "AllergyIntolerance": _rule("patient", "patient"),
    "Procedure": _rule("patient", "subject", *_SUBJECT),
    "DiagnosticReport": _rule("patient", "subject", *_SUBJECT),
    "DocumentReference": _rule("patient", "subject", *_SUBJECT),
    "Immunization": _rule("patient", "patient"),
    "ServiceRequest": _rule("patient", "subject", *_SUBJECT),
    "Appointment": _rule("patient", "participant.actor"),
    "CarePlan": _rule("patient", "subject", *_SUBJECT),
    "CareTeam": _rule("patient", "subject", *_SUBJECT),
    "Goal": _rule("patient", "subject", *_SUBJECT),
    "Coverage": _rule("beneficiary", "beneficiary", "patient"),
    "Claim": _rule("patient", "patient"),
    "ExplanationOfBenefit": _rule("patient", "patient"),
    "FamilyMemberHistory": _rule("patient", "patient"),
    "QuestionnaireResponse": _rule("patient", "subject", *_SUBJECT),
    "Specimen": _rule("patient", "subject", *_SUBJECT),
    "ImagingStudy": _rule("patient", "subject", *_SUBJECT),
    "Flag": _rule("patient", "subject", *_SUBJECT),
    "Consent": _rule("patient", "patient"),
    "EpisodeOfCare": _rule("patient", "patient"),
    "DeviceRequest": _rule("patient", "subject", *_SUBJECT),
    "NutritionOrder": _rule("patient", "patient"),
    "ClinicalImpression": _rule("patient", "subject", *_SUBJECT),
    "RiskAssessment": _rule("patient", "subject", *_SUBJECT),
    "Communication": _rule("patient", "subject", *_SUBJECT),
    "Composition": _rule("patient", "subject", *_SUBJECT),
    "DetectedIssue": _rule("patient", "patient"),
}

# Not about one patient: readable (read/search, never written) in patient context when a scope
# allows it.
SHARED_READ_TYPES: Final = frozenset(
    {
        "Medication",
        "Substance",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Schedule",
        "Slot",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "NamingSystem",
        "Questionnaire",
        "StructureDefinition",
        "SearchParameter",
        "OperationDefinition",
        "CapabilityStatement",
        "PlanDefinition",
        "ActivityDefinition",
        "Library",
    }
)


def in_patient_context(principal: Principal) -> bool:
    """True for a user token bound to a patient (the portal role): compartment rules apply."""
    return principal.kind == "user" and principal.patient_id is not None


def patient_reachable(resource_type: str) -> bool:
    """Whether a patient-context token can reach ``resource_type`` at all."""
    return resource_type in COMPARTMENT or resource_type in SHARED_READ_TYPES


def patient_reference(patient_id: str) -> str:
    return f"Patient/{patient_id}"


def compartment_param(resource_type: str, patient_id: str) -> tuple[str, str]:
    """The (name, value) pair that pins a search of ``resource_type`` to the patient."""
    rule = COMPARTMENT[resource_type]
    if rule.param == "_id":
        return ("_id", patient_id)
    return (rule.param, patient_reference(patient_id))


def _references_patient(value: Any, patient_id: str) -> bool:
    if not isinstance(value, Mapping):
        return False
    reference = value.get("reference")
    if not isinstance(reference, str):
        return False
    own = patient_reference(patient_id)
    return reference == own or reference.startswith(own + "/_history/")


def _values_at(resource: Mapping[str, Any], path: str) -> list[Any]:
    values: list[Any] = [resource]
    for part in path.split("."):
        found: list[Any] = []
        for value in values:
            if isinstance(value, Mapping) and part in value:
                item = value[part]
                found.extend(item if isinstance(item, list) else [item])
        values = found
    return values


def _other_patient_references(value: Any, patient_id: str) -> bool:
    """True if any ``reference`` anywhere in ``value`` names a Patient other than ours."""
    if isinstance(value, Mapping):
        reference = value.get("reference")
        if (
            isinstance(reference, str)
            and "Patient/" in reference
            and not _references_patient(value, patient_id)
        ):
            return True
        return any(_other_patient_references(v, patient_id) for v in value.values())
    if isinstance(value, list):
        return any(_other_patient_references(v, patient_id) for v in value)
    return False


def check_compartment_body(
    resource_type: str, resource: Mapping[str, Any], patient_id: str
) -> None:
    """Refuse a body a patient-context principal may not write.

    The compartment element must reference ``Patient/<patient_id>`` (relative reference; for
    Appointment at least one participant is the patient and every Patient participant is), and
    no reference anywhere in the body may name another Patient.
    """
    rule = COMPARTMENT.get(resource_type)
    if rule is None:
        raise PermissionDenied(f"{resource_type} cannot be written with a patient-context token")
    if resource_type == "Patient":
        if resource.get("id") != patient_id:
            raise PermissionDenied("A patient-context token may only write its own Patient")
    else:
        values = _values_at(resource, rule.body_path)
        if not values or not any(_references_patient(v, patient_id) for v in values):
            raise PermissionDenied(
                f"{resource_type}.{rule.body_path} must reference the token's patient"
            )
    if _other_patient_references(resource, patient_id):
        raise PermissionDenied("The resource references another patient")
