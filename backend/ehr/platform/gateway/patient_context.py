"""Patient context (a user token bound to a patient, the portal role): the compartment rules.

:func:`constrain` turns an interaction into the one HAPI must execute, pinned to the patient's
compartment (searches get the compartment parameter; a read of id X becomes the search
``_id=X&patient=Patient/<me>``; an update/delete of id X the conditional
``?_id=X&patient=Patient/<me>``). :func:`check_patient_interaction` and
:func:`check_patient_operation` are the structural refusals: chained parameters, ``_has``,
``_include``/``_revinclude`` leaving the compartment, types outside it, writes of shared types.
Refusals are :class:`~ehr.core.errors.PermissionDenied` (403), or for another patient's resource
addressed by id :class:`~ehr.core.errors.NotFoundError` (404).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from ehr.core.errors import NotFoundError, PermissionDenied
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.compartment import (
    COMPARTMENT,
    SHARED_READ_TYPES,
    compartment_param,
    in_patient_context,
    patient_reachable,
    patient_reference,
)
from ehr.platform.gateway.fhir_requests import FhirInteraction, is_page_fetch
from ehr.platform.gateway.scopes import grants

__all__ = ["check_patient_interaction", "check_patient_operation", "constrain", "own_patient"]

_WRITES: Final = frozenset({"create", "update", "patch", "delete"})
_REFUSED_PARAMS: Final = frozenset(
    {"_filter", "_query", "_contained", "_containedType", "_type", "_list"}
)
_PASSTHROUGH_READ_PARAMS: Final = frozenset({"_elements", "_summary", "_format", "_pretty"})


def own_patient(principal: Principal) -> str:
    """The patient of a patient-context principal."""
    if principal.patient_id is None:  # pragma: no cover - callers check in_patient_context
        raise PermissionDenied("The token has no patient context")
    return principal.patient_id


def check_patient_operation(principal: Principal, interaction: FhirInteraction) -> None:
    """Patient context: refuse an operation on a type (or with parameters) outside the
    compartment."""
    if interaction.resource_type is not None and not patient_reachable(interaction.resource_type):
        raise PermissionDenied(
            f"{interaction.resource_type} is outside a patient-context token's compartment"
        )
    _check_params(principal, interaction.resource_type, interaction.params)


def _check_params(
    principal: Principal, resource_type: str | None, params: tuple[tuple[str, str], ...]
) -> None:
    """Structural refusals for patient context: chains, _has, includes, compartment params."""
    own = own_patient(principal)
    rule = COMPARTMENT.get(resource_type) if resource_type else None
    own_values = {own, patient_reference(own)}
    for name, value in params:
        base, _, modifier = name.partition(":")
        if "." in name or base.startswith("_has") or base in _REFUSED_PARAMS:
            raise PermissionDenied(
                f"Search parameter {name} is not available with a patient-context token"
            )
        if base == "_include":
            _check_include(principal, resource_type, name, value)
        elif base == "_revinclude":
            _check_revinclude(principal, resource_type, name, value)
        elif (
            rule is not None
            and base in rule.aliases
            and (modifier or any(v not in own_values for v in value.split(",")))
        ):
            raise PermissionDenied(f"{name} conflicts with the patient compartment of the token")


def _check_include(principal: Principal, resource_type: str | None, name: str, value: str) -> None:
    rule = COMPARTMENT.get(resource_type) if resource_type else None
    parts = value.split(":")
    ok = (
        name == "_include"
        and rule is not None
        and resource_type != "Patient"
        and len(parts) in (2, 3)
        and parts[0] == resource_type
        and parts[1] in rule.aliases
        and (len(parts) == 2 or parts[2] == "Patient")
        and grants(principal, "Patient", "r")
    )
    if not ok:
        raise PermissionDenied(
            f"_include={value} is not available with a patient-context token "
            "(only the search type's patient reference)"
        )


def _check_revinclude(
    principal: Principal, resource_type: str | None, name: str, value: str
) -> None:
    parts = value.split(":")
    source = COMPARTMENT.get(parts[0]) if parts else None
    ok = (
        name == "_revinclude"
        and resource_type == "Patient"
        and source is not None
        and parts[0] != "Patient"
        and len(parts) in (2, 3)
        and parts[1] in source.aliases
        and (len(parts) == 2 or parts[2] == "Patient")
        and grants(principal, parts[0], "rs")
    )
    if not ok:
        raise PermissionDenied(
            f"_revinclude={value} is not available with a patient-context token "
            "(only on Patient, by a compartment type's patient reference)"
        )


def check_patient_interaction(principal: Principal, interaction: FhirInteraction) -> None:
    """Patient context: refuse what cannot be pinned to the compartment (403, or 404 for another
    patient's Patient addressed by id)."""
    kind, resource_type = interaction.kind, interaction.resource_type
    if resource_type is None:
        raise PermissionDenied(f"System-level {kind} is not available with a patient-context token")
    if resource_type in SHARED_READ_TYPES:
        if kind in _WRITES:
            raise PermissionDenied(f"{resource_type} is read-only with a patient-context token")
        _check_params(principal, resource_type, interaction.params)
        return
    if resource_type not in COMPARTMENT:
        raise PermissionDenied(f"{resource_type} is outside a patient-context token's compartment")
    own = own_patient(principal)
    if kind == "patch":
        raise PermissionDenied("Patch is not available with a patient-context token (use update)")
    if resource_type == "Patient":
        if kind == "history" and interaction.resource_id is None:
            raise PermissionDenied(
                "Type-level history is not available with a patient-context token"
            )
        if kind in ("create", "delete"):
            raise PermissionDenied(f"A patient-context token cannot {kind} a Patient")
        if interaction.resource_id is not None and interaction.resource_id != own:
            if kind in ("update",):
                raise PermissionDenied("A patient-context token may only update its own Patient")
            raise NotFoundError("Resource not found")
    elif kind in ("vread", "history"):
        raise PermissionDenied(
            f"{kind} of {resource_type} is not available with a patient-context token"
        )
    elif (
        kind == "create"
        and interaction.conditional
        and compartment_param(resource_type, own) not in interaction.params
    ):
        # The criteria (If-None-Exist) must be pinned by the caller: HAPI answers a match with
        # the matched resource, and the gateway forwards the header as sent.
        name, value = compartment_param(resource_type, own)
        raise PermissionDenied(
            f"A conditional create with a patient-context token must include {name}={value} "
            "in its criteria"
        )
    _check_params(principal, resource_type, interaction.params)


def _with_param(
    params: tuple[tuple[str, str], ...], pair: tuple[str, str]
) -> tuple[tuple[str, str], ...]:
    return params if pair in params else (*params, pair)


def constrain(principal: Principal, interaction: FhirInteraction) -> FhirInteraction:
    """The interaction HAPI must execute for this principal (patient context: compartment-bound).

    Raises like :func:`authorize` for what cannot be constrained. Idempotent.
    """
    if not in_patient_context(principal):
        return interaction
    if interaction.kind in ("capabilities", "transaction", "batch"):
        return interaction
    if (
        interaction.kind == "search"
        and interaction.resource_type is None
        and is_page_fetch(interaction.params)
    ):
        return interaction
    if interaction.kind == "operation":
        check_patient_operation(principal, interaction)
        return interaction
    check_patient_interaction(principal, interaction)
    resource_type = interaction.resource_type or ""
    if resource_type in SHARED_READ_TYPES:
        return interaction
    own = own_patient(principal)
    pair = compartment_param(resource_type, own)
    kind, resource_id = interaction.kind, interaction.resource_id
    if resource_type == "Patient":
        # Ids other than the patient's own were refused above (404/403).
        if kind == "search" or (interaction.conditional and resource_id is None):
            return replace(interaction, params=_with_param(interaction.params, pair))
        return interaction
    if kind == "read":
        kept = tuple((n, v) for n, v in interaction.params if n in _PASSTHROUGH_READ_PARAMS)
        return replace(
            interaction,
            kind="search",
            method="GET",
            resource_id=None,
            params=(("_id", resource_id or ""), pair, *kept),
        )
    if kind in ("update", "delete") and resource_id is not None:
        return replace(
            interaction,
            resource_id=None,
            conditional=True,
            params=_with_param((("_id", resource_id), *interaction.params), pair),
        )
    if kind == "search" or interaction.conditional:
        return replace(interaction, params=_with_param(interaction.params, pair))
    return interaction  # plain create: the body is checked by check_body
