"""Who may see which event: the permission each event type needs, and the patient compartment.

An event carries ids only, but that a patient has a critical result is itself clinical
information: a subscriber receives an event only when it holds the permission that reading the
event's resource through the API needs. The rule is keyed by the type's first word (its domain)
and is closed: a type whose domain is not in :data:`DOMAIN_PERMISSIONS` reaches nobody until
someone decides who may see it. ``fhir.*`` events (a FHIR change, issue 16 item 2) need a
permission granting read on the changed resource's type (the SMART scope table).

A portal principal (only the ``patient`` role) is confined to its own compartment as
``patients.compartment_of`` confines it on the REST routes (the same rule, restated here
because the platform layer cannot import a module): only events whose subject is its own
Patient, never events without a subject.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ehr.platform.auth.permissions import PERMISSION_SCOPES, Permission, Role
from ehr.platform.auth.principal import Principal

__all__ = [
    "DOMAIN_PERMISSIONS",
    "Subscription",
    "compartment_of",
    "may_see",
    "needed_permissions",
    "sees_any_event",
]

P = Permission

# An event type's domain → the permission that reading its resource needs.
DOMAIN_PERMISSIONS: Final[Mapping[str, Permission]] = {
    "result": P.RESULT_READ,
    "order": P.ORDER_READ,
    "patient": P.PATIENT_READ,
    "encounter": P.CLINICAL_READ,
    "problem": P.CLINICAL_READ,
    "allergy": P.CLINICAL_READ,
    "vital": P.CLINICAL_READ,
    "note": P.CLINICAL_READ,
    "medication": P.MEDICATION_READ,
    "appointment": P.SCHEDULE_READ,
}
_FHIR_DOMAIN: Final = "fhir"
_PATIENT_PREFIX: Final = "Patient/"


def _readers_by_resource_type() -> Mapping[str, frozenset[Permission]]:
    readers: dict[str, set[Permission]] = {}
    for permission, scopes in PERMISSION_SCOPES.items():
        for scope in scopes:
            resource_type, _, actions = scope.partition(".")
            if "r" in actions:
                readers.setdefault(resource_type, set()).add(permission)
    return {k: frozenset(v) for k, v in readers.items()}


_READERS: Final = _readers_by_resource_type()


def needed_permissions(event_type: str, resource: str | None) -> frozenset[Permission]:
    """Any ONE of these lets a subscriber see the event; empty: nobody may."""
    domain = event_type.partition(".")[0]
    if domain == _FHIR_DOMAIN:
        if resource is None:
            return frozenset()
        return _READERS.get(resource.partition("/")[0], frozenset())
    permission = DOMAIN_PERMISSIONS.get(domain)
    return frozenset() if permission is None else frozenset({permission})


def compartment_of(principal: Principal) -> str | None:
    """The only Patient id a portal principal may hear about; ``None`` for staff and services.

    The same rule as ``ehr.modules.patients.compartment_of``: a portal principal without a
    linked Patient gets ``""``, which no event's subject matches.
    """
    if principal.roles and all(role == Role.PATIENT for role in principal.roles):
        return principal.patient_id or ""
    return None


def sees_any_event(principal: Principal) -> bool:
    """Whether some event type could ever reach ``principal`` (else the connection is refused)."""
    held = principal.permissions
    return any(str(p) in held for p in DOMAIN_PERMISSIONS.values())


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


@dataclass(frozen=True, slots=True)
class Subscription:
    """What the client asked for: event types (``result.critical`` or ``result.*``) and
    patients (FHIR ids); empty means everything it may see."""

    types: frozenset[str] = frozenset()
    patients: frozenset[str] = frozenset()

    @classmethod
    def of(cls, types: Iterable[str] = (), patients: Iterable[str] = ()) -> Subscription:
        return cls(frozenset(types), frozenset(patients))

    def wants(self, event_type: str, subject: str | None) -> bool:
        if self.types and not any(_type_matches(p, event_type) for p in self.types):
            return False
        if self.patients:
            if subject is None or not subject.startswith(_PATIENT_PREFIX):
                return False
            return subject[len(_PATIENT_PREFIX) :] in self.patients
        return True


def may_see(
    principal: Principal,
    event_type: str,
    subject: str | None,
    resource: str | None,
    *,
    tenant: str,
    held: frozenset[str] | None = None,
) -> bool:
    """The access rule of one event for one principal (tenant, permission, compartment);
    ``held``: the principal's permissions when the caller keeps them (they are derived from
    its roles on each access otherwise)."""
    if tenant != principal.tenant:
        return False
    needed = needed_permissions(event_type, resource)
    if held is None:
        held = principal.permissions
    if not any(str(p) in held for p in needed):
        return False
    own = compartment_of(principal)
    if own is not None:
        return bool(own) and subject == f"{_PATIENT_PREFIX}{own}"
    return True
