"""The FHIR operations the gateway serves, and who may invoke them (ADR 0010).

:data:`ALLOWED_OPERATIONS` is the allow-list (levels, resource types and the scope requirement of
each); :data:`ADMIN_OPERATIONS` (and the ``$partition-management-``/``$hapi.fhir.``/``$mdm-``/
``$bulk-`` families) are refused for everyone, administrators included. :func:`operation_denial`
says why an operation is refused for a principal (or ``None`` when it is allowed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.compartment import in_patient_context, patient_reachable
from ehr.platform.gateway.scopes import grants, grants_any

__all__ = [
    "ADMIN_OPERATIONS",
    "ALLOWED_OPERATIONS",
    "Level",
    "OperationRule",
    "is_operation_allowed",
    "operation_denial",
]

Level = Literal["system", "type", "instance"]


@dataclass(frozen=True, slots=True)
class OperationRule:
    levels: frozenset[Level]
    # Resource types it may be invoked on (None: any, or system level).
    resource_types: frozenset[str] | None
    # everything | validate | terminology | meta | export — see operation_denial.
    requirement: str


def _op(levels: str, types: str | None, requirement: str) -> OperationRule:
    return OperationRule(
        frozenset(levels.split()),  # type: ignore[arg-type]
        frozenset(types.split()) if types else None,
        requirement,
    )


ALLOWED_OPERATIONS: Final[Mapping[str, OperationRule]] = {
    # Everything about a patient: needs r+s on every type ("*.rs"); never in patient context
    # (HAPI's compartment is wider than ours).
    "$everything": _op("type instance", "Patient", "everything"),
    # No storage: any scope on the type (type level) / r on the type (instance level).
    "$validate": _op("system type instance", None, "validate"),
    # Terminology: any read scope.
    "$expand": _op("type instance", "ValueSet", "terminology"),
    "$validate-code": _op("type instance", "ValueSet CodeSystem", "terminology"),
    "$lookup": _op("type instance", "CodeSystem", "terminology"),
    "$subsumes": _op("type instance", "CodeSystem", "terminology"),
    "$translate": _op("type instance", "ConceptMap", "terminology"),
    # Tags/profiles/labels in use (read-only); not in patient context.
    "$meta": _op("system type instance", None, "meta"),
    # Bulk data: API keys holding system/*.rs only.
    "$export": _op("system type instance", "Patient Group", "export"),
    "$export-poll-status": _op("system", None, "export"),
}

# Refused for everyone through the gateway, administrators included (HAPI's admin surface).
ADMIN_OPERATIONS: Final = frozenset(
    {
        "$expunge",
        "$delete-expunge",
        "$reindex",
        "$reindex-dryrun",
        "$mark-all-resources-for-reindexing",
        "$perform-reindexing-pass",
        "$upload-external-code-system",
        "$apply-codesystem-delta-add",
        "$apply-codesystem-delta-remove",
        "$trigger-subscription",
        "$meta-add",
        "$meta-delete",
        "$merge",
        "$hapi.fhir.replace-references",
        "$binary-access-write",
        "$mcp",
    }
)
_ADMIN_PREFIXES: Final = ("$partition-management-", "$hapi.fhir.", "$mdm-", "$bulk-")


def _normalize_operation(operation: str) -> str:
    return operation if operation.startswith("$") else f"${operation}"


def operation_denial(
    principal: Principal, operation: str, resource_type: str | None, resource_id: str | None
) -> str | None:
    """Why the operation is refused, or None when it is allowed."""
    name = _normalize_operation(operation)
    if name in ADMIN_OPERATIONS or name.startswith(_ADMIN_PREFIXES):
        return f"{name} is an administrative operation, not available through the gateway"
    rule = ALLOWED_OPERATIONS.get(name)
    if rule is None:
        return f"{name} is not an allowed operation"
    level: Level = (
        "system" if resource_type is None else "type" if resource_id is None else "instance"
    )
    if level not in rule.levels or (
        resource_type is not None
        and rule.resource_types is not None
        and resource_type not in rule.resource_types
    ):
        return f"{name} is not allowed at this level or on this resource type"
    patient = in_patient_context(principal)
    denied = f"No scope grants {name} here"
    match rule.requirement:
        case "everything":
            if patient:
                return f"{name} is not available with a patient-context token"
            return None if grants(principal, None, "rs") else denied
        case "validate":
            if level == "instance":
                if patient:
                    return f"Instance-level {name} is not available with a patient-context token"
                return None if grants(principal, resource_type, "r") else denied
            if patient and resource_type is not None and not patient_reachable(resource_type):
                return denied
            ok = any(
                grants(principal, resource_type, a) if resource_type else grants_any(principal, a)
                for a in "cruds"
            )
            return None if ok else denied
        case "terminology":
            return None if grants_any(principal, "r") else denied
        case "meta":
            if patient:
                return f"{name} is not available with a patient-context token"
            actions = "r" if level == "instance" else "rs"
            return None if grants(principal, resource_type, actions) else denied
        case "export":
            if not principal.is_system_client:
                return f"{name} is for system clients (API keys, Backend Services) with system/*.rs"
            return None if grants(principal, None, "rs") else denied
    return denied  # pragma: no cover - every requirement is matched above


def is_operation_allowed(principal: Principal, operation: str, resource_type: str | None) -> bool:
    """The allow-list decision for ``operation`` at system (None) or type level."""
    return operation_denial(principal, operation, resource_type, None) is None
