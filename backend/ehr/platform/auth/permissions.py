"""Roles, permissions and SMART-style scopes: the ONE table of who may do what.

Routes never check roles: each declares the permission it needs (``resource:action``) with the
``RequirePermission`` dependency, and a role grants a set of permissions here. A route without
an explicit permission dependency fails a test.

SMART-style scopes (v2 syntax, ``user/Patient.rs``) are derived from the same table for access
tokens; API keys carry explicit scopes, checked against the same permission names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

__all__ = [
    "PERMISSION_SCOPES",
    "ROLE_PERMISSIONS",
    "Permission",
    "Role",
    "permissions_for",
    "scopes_for",
]


class Role(StrEnum):
    PHYSICIAN = "physician"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    # Receives, moves and counts stock; prepares. Never verifies an order or witnesses waste.
    PHARMACY_TECHNICIAN = "pharmacy_technician"
    LAB_TECHNICIAN = "lab_technician"
    FRONT_DESK = "front_desk"
    BILLING = "billing"
    ADMIN = "admin"
    # Portal users: may only see their own compartment (enforced by the compartment check).
    PATIENT = "patient"


class Permission(StrEnum):
    PATIENT_READ = "patient:read"
    PATIENT_WRITE = "patient:write"
    CLINICAL_READ = "clinical:read"
    CLINICAL_WRITE = "clinical:write"
    # Signing (and co-signing, amending) a clinical note: the author's legal attestation.
    NOTE_SIGN = "note:sign"
    MEDICATION_READ = "medication:read"
    MEDICATION_PRESCRIBE = "medication:prescribe"
    MEDICATION_DISPENSE = "medication:dispense"
    MEDICATION_ADMINISTER = "medication:administer"
    ORDER_READ = "order:read"
    # Drafting an order (physicians; nurses enter verbal/protocol orders for a physician to sign).
    ORDER_DRAFT = "order:draft"
    # Signing (activating), holding, revoking an order: the prescriber's act.
    ORDER_PLACE = "order:place"
    # Order sets: the tenant's definitions (PlanDefinitions) an order set is instantiated from;
    # reading them (no patient data) and managing them.
    ORDER_SET_READ = "order_set:read"
    ORDER_SET_MANAGE = "order_set:manage"
    RESULT_READ = "result:read"
    RESULT_WRITE = "result:write"
    # Acknowledging a critical result (who, when, comment): the clinician who acts on it.
    RESULT_ACKNOWLEDGE = "result:acknowledge"
    SCHEDULE_READ = "schedule:read"
    SCHEDULE_WRITE = "schedule:write"
    BILLING_READ = "billing:read"
    BILLING_WRITE = "billing:write"
    FHIR_READ = "fhir:read"
    FHIR_WRITE = "fhir:write"
    AUDIT_VIEW = "audit:view"
    USER_ADMIN = "user:admin"
    APIKEY_ADMIN = "apikey:admin"
    TENANT_ADMIN = "tenant:admin"
    BREAK_GLASS = "break_glass:assert"
    # The tenant's medication-safety display policy (which alerts interrupt).
    MEDICATION_SAFETY_CONFIGURE = "medication_safety:configure"
    # HL7 v2 interfaces: sending messages over HTTP (an interface engine's API key), and the
    # inbox, dead letters, replays and sender registrations (message bodies are PHI, audited).
    HL7_SEND = "hl7:send"
    HL7_MANAGE = "hl7:manage"
    # Pharmacy stock (ADR 0034): receiving, moving, counting and wasting stock, reading
    # balances (technicians and pharmacists); the products, locations, recalls and the
    # controlled-substance record — ledger, discrepancies, inventory export (pharmacists).
    PHARMACY_INVENTORY = "pharmacy:inventory"
    PHARMACY_MANAGE = "pharmacy:manage"
    # Verifying signed medication orders (the verification queue, claims, decisions).
    PHARMACY_VERIFY = "pharmacy:verify"
    # Every authenticated principal: own profile, own MFA, logout.
    SELF_MANAGE = "self:manage"


P = Permission
_CLINICIAN_COMMON: Final = frozenset(
    {
        P.SELF_MANAGE,
        P.PATIENT_READ,
        P.CLINICAL_READ,
        P.MEDICATION_READ,
        P.ORDER_READ,
        P.ORDER_SET_READ,
        P.RESULT_READ,
        P.SCHEDULE_READ,
        P.FHIR_READ,
        P.BREAK_GLASS,
    }
)

ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.PHYSICIAN: _CLINICIAN_COMMON
    | {
        P.PATIENT_WRITE,
        P.CLINICAL_WRITE,
        P.NOTE_SIGN,
        P.MEDICATION_PRESCRIBE,
        P.ORDER_DRAFT,
        P.ORDER_PLACE,
        P.RESULT_ACKNOWLEDGE,
        P.FHIR_WRITE,
    },
    Role.NURSE: _CLINICIAN_COMMON
    | {
        P.PATIENT_WRITE,
        P.CLINICAL_WRITE,
        P.MEDICATION_ADMINISTER,
        P.ORDER_DRAFT,
        P.RESULT_ACKNOWLEDGE,
        P.FHIR_WRITE,
    },
    Role.PHARMACIST: _CLINICIAN_COMMON
    | {P.MEDICATION_DISPENSE, P.PHARMACY_INVENTORY, P.PHARMACY_MANAGE, P.PHARMACY_VERIFY},
    Role.PHARMACY_TECHNICIAN: frozenset(
        {P.SELF_MANAGE, P.MEDICATION_READ, P.ORDER_READ, P.PHARMACY_INVENTORY}
    ),
    Role.LAB_TECHNICIAN: frozenset(
        {P.SELF_MANAGE, P.PATIENT_READ, P.ORDER_READ, P.RESULT_READ, P.RESULT_WRITE, P.FHIR_READ}
    ),
    Role.FRONT_DESK: frozenset(
        {P.SELF_MANAGE, P.PATIENT_READ, P.PATIENT_WRITE, P.SCHEDULE_READ, P.SCHEDULE_WRITE}
    ),
    Role.BILLING: frozenset({P.SELF_MANAGE, P.PATIENT_READ, P.BILLING_READ, P.BILLING_WRITE}),
    # Administrators manage people, keys, the audit trail and tenant configuration; no clinical
    # data by default (break-glass is for clinicians).
    Role.ADMIN: frozenset(
        {
            P.SELF_MANAGE,
            P.USER_ADMIN,
            P.APIKEY_ADMIN,
            P.TENANT_ADMIN,
            P.AUDIT_VIEW,
            P.MEDICATION_SAFETY_CONFIGURE,
            P.ORDER_SET_READ,
            P.ORDER_SET_MANAGE,
            P.HL7_MANAGE,
        }
    ),
    Role.PATIENT: frozenset(
        {
            P.SELF_MANAGE,
            P.PATIENT_READ,
            P.CLINICAL_READ,
            P.MEDICATION_READ,
            P.RESULT_READ,
            P.SCHEDULE_READ,
        }
    ),
}

# SMART v2 scopes granted with each permission ("rs" read+search, "cud" create/update/delete).
PERMISSION_SCOPES: Final[Mapping[Permission, tuple[str, ...]]] = {
    P.PATIENT_READ: ("Patient.rs",),
    P.PATIENT_WRITE: ("Patient.cu",),
    P.CLINICAL_READ: (
        "Encounter.rs",
        "Condition.rs",
        "Observation.rs",
        "AllergyIntolerance.rs",
        "Procedure.rs",
        "DocumentReference.rs",
        "Immunization.rs",
        "CarePlan.rs",
        "Goal.rs",
    ),
    P.CLINICAL_WRITE: (
        "Encounter.cu",
        "Condition.cu",
        "Observation.cu",
        "AllergyIntolerance.cu",
        "Procedure.cu",
        "DocumentReference.cu",
        "Immunization.cu",
        "CarePlan.cu",
        "Goal.cu",
    ),
    P.MEDICATION_READ: (
        "MedicationRequest.rs",
        "MedicationDispense.rs",
        "MedicationAdministration.rs",
        "MedicationStatement.rs",
        "Medication.rs",
    ),
    P.MEDICATION_PRESCRIBE: ("MedicationRequest.cu",),
    P.MEDICATION_DISPENSE: ("MedicationDispense.cu",),
    P.MEDICATION_ADMINISTER: ("MedicationAdministration.cu",),
    P.ORDER_READ: ("ServiceRequest.rs", "RequestGroup.rs"),
    P.ORDER_SET_READ: ("PlanDefinition.rs",),
    P.ORDER_DRAFT: ("ServiceRequest.cu", "RequestGroup.cu"),
    P.ORDER_PLACE: ("ServiceRequest.cu", "RequestGroup.cu"),
    P.RESULT_READ: ("DiagnosticReport.rs", "Observation.rs"),
    P.RESULT_WRITE: ("DiagnosticReport.cu", "Observation.cu"),
    P.RESULT_ACKNOWLEDGE: ("Task.rs", "Task.cu"),
    P.SCHEDULE_READ: ("Appointment.rs", "Schedule.rs", "Slot.rs"),
    P.SCHEDULE_WRITE: ("Appointment.cu",),
    P.BILLING_READ: ("Coverage.rs", "Claim.rs"),
    P.BILLING_WRITE: ("Claim.cu",),
    # Direct FHIR access (/fhir): the directory and terminology that clinical data points to.
    P.FHIR_READ: (
        "Practitioner.rs",
        "PractitionerRole.rs",
        "Organization.rs",
        "Location.rs",
        "ValueSet.rs",
        "CodeSystem.rs",
        "ConceptMap.rs",
    ),
}


def permissions_for(roles: Iterable[str]) -> frozenset[Permission]:
    """Union of the permissions of the given role names (unknown names grant nothing)."""
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= ROLE_PERMISSIONS[Role(name)]
        except ValueError:
            continue
    return frozenset(granted)


def scopes_for(roles: Iterable[str]) -> frozenset[str]:
    """SMART-style scopes for an access token: ``patient/`` for the portal role, else ``user/``."""
    roles = list(roles)
    context = "patient" if roles and all(r == Role.PATIENT for r in roles) else "user"
    scopes = {"openid", "fhirUser"}
    for permission in permissions_for(roles):
        scopes.update(f"{context}/{scope}" for scope in PERMISSION_SCOPES.get(permission, ()))
    return frozenset(scopes)
