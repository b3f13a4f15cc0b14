"""Authorization of FHIR interactions through the gateway (ADR 0010).

The gateway parses each request into a :class:`FhirInteraction` (or uses :func:`parse_request`)
and calls, in this order:

1. :func:`authorize` — SMART scopes per interaction kind and resource type, the operations
   allow-list, and (patient context) the structural refusals: chained parameters, ``_has``,
   ``_include``/``_revinclude`` leaving the compartment, types outside the compartment;
2. :func:`constrain` — patient context only: the interaction HAPI must execute instead, pinned to
   the patient's compartment (searches get the compartment parameter; a read of id X becomes the
   search ``_id=X&patient=Patient/<me>`` and the gateway answers its single match or 404; an
   update/delete of id X becomes the conditional ``?_id=X&patient=Patient/<me>``). User and
   system contexts get the interaction back unchanged;
3. :func:`check_body` — on create/update bodies (and every resource in a transaction, done by
   :func:`authorize_bundle`);
4. :func:`authorize_bundle` — transaction/batch: every entry authorized; in patient context an
   entry must already be stated inside the compartment (its :func:`constrain` is a no-op).

The rules live in :mod:`~ehr.platform.gateway.operations` (the operations allow-list),
:mod:`~ehr.platform.gateway.patient_context` (:func:`constrain` and the compartment refusals) and
:mod:`~ehr.platform.gateway.fhir_requests` (:class:`FhirInteraction`, :func:`parse_request`); this
module decides with them and is what :mod:`ehr.platform.gateway.enforcement` loads.

Every refusal is :class:`ehr.core.errors.PermissionDenied` (403) or, for another patient's resource
addressed by id, :class:`ehr.core.errors.NotFoundError` (404); details never carry data.

Action letters per interaction kind (SMART v2): read/vread ``r``; search ``s``; create ``c``;
update/patch ``u``; delete ``d``; history ``r`` + ``s``; any conditional interaction also ``s``
(its criteria are a search). System-level search/history need a ``*`` scope (or, for a search
with ``_type``, the scope on each listed type). ``capabilities`` is always allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from ehr.core.errors import BadRequestError, NotFoundError, PermissionDenied
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.compartment import check_compartment_body, in_patient_context
from ehr.platform.gateway.fhir_requests import (
    FhirInteraction,
    InteractionKind,
    is_page_fetch,
    parse_request,
)
from ehr.platform.gateway.operations import (
    ADMIN_OPERATIONS,
    ALLOWED_OPERATIONS,
    OperationRule,
    is_operation_allowed,
    operation_denial,
)
from ehr.platform.gateway.patient_context import (
    check_patient_interaction,
    check_patient_operation,
    constrain,
    own_patient,
)
from ehr.platform.gateway.scopes import grants, grants_any

__all__ = [
    "ADMIN_OPERATIONS",
    "ALLOWED_OPERATIONS",
    "PLATFORM_TAG_SYSTEM",
    "PLATFORM_TYPES",
    "FhirInteraction",
    "InteractionKind",
    "OperationRule",
    "authorize",
    "authorize_bundle",
    "check_body",
    "constrain",
    "in_patient_context",
    "is_operation_allowed",
    "parse_request",
]

# Resource types only the platform manages: HAPI's subscriptions carry the change feed's
# secrets and endpoints (ehr.platform.fhir_changes); no client reads or writes them.
PLATFORM_TYPES: Final = frozenset({"Subscription"})
# Tags of this system are the platform's statements about a resource (who recorded it); a
# client may not set them.
PLATFORM_TAG_SYSTEM: Final = "urn:ehr:platform"

_ACTIONS: Final[Mapping[str, str]] = {
    "read": "r",
    "vread": "r",
    "search": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "history": "rs",
}


def _types_param(params: tuple[tuple[str, str], ...]) -> list[str] | None:
    types = [t for name, value in params if name == "_type" for t in value.split(",") if t]
    return types or None


def authorize(principal: Principal, interaction: FhirInteraction) -> None:
    """Raise PermissionDenied unless the principal's scopes allow the interaction.

    ``transaction``/``batch`` pass here only as a whole: the gateway must call
    :func:`authorize_bundle` on the body.
    """
    kind = interaction.kind
    if kind == "capabilities":
        return
    if kind in ("transaction", "batch"):
        if interaction.resource_type is not None:
            raise BadRequestError("A transaction or batch is posted to the base URL")
        return
    if kind == "operation":
        reason = operation_denial(
            principal,
            interaction.operation or "",
            interaction.resource_type,
            interaction.resource_id,
        )
        if reason is not None:
            raise PermissionDenied(reason)
        if in_patient_context(principal):
            check_patient_operation(principal, interaction)
        return
    resource_type = interaction.resource_type
    if kind == "search" and resource_type is None and is_page_fetch(interaction.params):
        # A page of an earlier search (already authorized and constrained); the gateway binds
        # page ids to their tenant (ehr.platform.gateway.pages).
        if not grants_any(principal, "s"):
            raise PermissionDenied("No scope grants search")
        return
    if any(name.startswith("_getpages") for name, _ in interaction.params):
        raise PermissionDenied("_getpages is only valid alone, on the base URL")
    if resource_type is None and kind not in ("search", "history"):
        raise BadRequestError(f"A {kind} needs a resource type")
    named = {resource_type, *(_types_param(interaction.params) or ())}
    if named & PLATFORM_TYPES:
        raise PermissionDenied("Subscription resources are managed by the platform")
    actions = set(_ACTIONS[kind])
    if interaction.conditional:
        actions.add("s")
    listed = _types_param(interaction.params) if resource_type is None else None
    targets: list[str | None] = list(listed) if listed and kind == "search" else [resource_type]
    for target in targets:
        if not grants(principal, target, actions):
            what = target or "all resource types"
            raise PermissionDenied(f"No scope grants {kind} on {what}")
    if in_patient_context(principal):
        check_patient_interaction(principal, interaction)
    elif kind == "search" or interaction.conditional:
        _check_reach(principal, interaction.params)


# Reference search parameters whose target type is fixed (elsewhere: name it, ``subject:Patient``).
_SINGLE_TARGET: Final[Mapping[str, str]] = {
    "patient": "Patient",
    "beneficiary": "Patient",
    "encounter": "Encounter",
    "medication": "Medication",
    "organization": "Organization",
    "location": "Location",
    "practitioner": "Practitioner",
}


def _target(param: str, explicit: str | None) -> str | None:
    """The type a reference parameter points to, or None when it could be several."""
    return explicit or _SINGLE_TARGET.get(param)


def _check_reach(principal: Principal, params: tuple[tuple[str, str], ...]) -> None:
    """Every context: what a search pulls in or probes beyond its own type needs scopes too.

    ``_include`` needs ``r`` on the included type, ``_revinclude`` ``r``+``s`` on the source type,
    a chain (``subject:Patient.name``) or ``_has:Type`` ``s`` on the type it searches; when that
    type is not fixed (``subject.name``, ``_include=*``, ``:iterate``, multi-hop chains) a ``*``
    scope is needed.
    """
    for name, value in params:
        base, _, modifier = name.partition(":")
        needs: list[tuple[str | None, str]] = []
        if base == "_include":
            parts = value.split(":")
            target = (
                None
                if modifier or len(parts) < 2 or parts[0] == "*"
                else (_target(parts[1], parts[2] if len(parts) > 2 else None))
            )
            needs.append((target, "r"))
        elif base == "_revinclude":
            parts = value.split(":")
            source = None if modifier or parts[0] == "*" else parts[0]
            needs.append((source, "rs"))
        elif base == "_has":
            segments = name.split(":")
            needs += [
                (segments[i + 1], "s")
                for i, segment in enumerate(segments[:-1])
                if segment == "_has"
            ]
        elif "." in name:
            hops = name.split(".")
            first, _, explicit = hops[0].partition(":")
            target = _target(first, explicit or None) if len(hops) == 2 else None
            needs.append((target, "s"))
        for target, actions in needs:
            if not grants(principal, target, actions):
                what = target or "every resource type (*)"
                raise PermissionDenied(f"{name} needs a scope on {what}")


# --- bodies and bundles -------------------------------------------------------------------------


def check_body(
    principal: Principal, interaction: FhirInteraction, resource: Mapping[str, Any]
) -> None:
    """Refuse a create/update body that does not match the URL or (patient context) the
    compartment: its patient reference must be the token's patient, and no reference may name
    another Patient."""
    resource_type = resource.get("resourceType")
    if interaction.resource_type is not None and resource_type != interaction.resource_type:
        raise BadRequestError("The resource's type does not match the request URL")
    if not isinstance(resource_type, str):
        raise BadRequestError("The resource has no resourceType")
    if (
        interaction.kind == "update"
        and interaction.resource_id is not None
        and resource.get("id") != interaction.resource_id
    ):
        raise BadRequestError("The resource's id does not match the request URL")
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    if isinstance(tags, list) and any(
        isinstance(tag, Mapping) and tag.get("system") == PLATFORM_TAG_SYSTEM for tag in tags
    ):
        raise PermissionDenied(f"Tags of {PLATFORM_TAG_SYSTEM} are set by the platform only")
    if in_patient_context(principal) and interaction.kind in ("create", "update"):
        check_compartment_body(resource_type, resource, own_patient(principal))


def _entry_interaction(index: int, entry: Any) -> tuple[FhirInteraction, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("request"), Mapping):
        raise BadRequestError(f"Bundle entry {index} has no request")
    request = entry["request"]
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not isinstance(url, str):
        raise BadRequestError(f"Bundle entry {index} has no request method or url")
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise PermissionDenied(f"Bundle entry {index}: absolute URLs are not allowed")
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    if any(name.startswith("_getpages") for name, _ in params):
        # Page ids are bound to their tenant by the gateway, on top-level requests only.
        raise PermissionDenied(f"Bundle entry {index}: search pages cannot be fetched in a bundle")
    interaction = parse_request(method, parts.path, params)
    if interaction.kind in ("transaction", "batch", "capabilities") or (
        interaction.kind == "search" and interaction.resource_type is None and not params
    ):
        raise BadRequestError(f"Bundle entry {index}: unsupported request")
    if interaction.kind == "create":
        if_none_exist = request.get("ifNoneExist")
        if isinstance(if_none_exist, str) and if_none_exist:
            criteria = tuple(parse_qsl(if_none_exist.lstrip("?"), keep_blank_values=True))
            interaction = replace(interaction, params=criteria, conditional=True)
    return interaction, entry.get("resource")


def authorize_bundle(principal: Principal, bundle: Mapping[str, Any]) -> None:
    """Authorize every entry of a transaction/batch; raise on the first violation.

    In patient context every entry must already be inside the compartment (``constrain`` leaves
    it unchanged): e.g. ``GET Observation?patient=Patient/<me>&code=...``, or
    ``PUT Observation?_id=X&patient=Patient/<me>``; reads by id of compartment types are refused
    (use the search form). Create/update resources are checked with :func:`check_body`.
    """
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") not in ("transaction", "batch"):
        raise BadRequestError("Expected a transaction or batch Bundle")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequestError("Bundle.entry must be a list")
    patient = in_patient_context(principal)
    for index, entry in enumerate(entries):
        interaction, resource = _entry_interaction(index, entry)
        try:
            authorize(principal, interaction)
            if patient and constrain(principal, interaction) != interaction:
                raise PermissionDenied(
                    "must be stated inside the token's patient compartment "
                    "(searches carry the compartment parameter, e.g. patient=Patient/<id>; "
                    "reads by id use the search form; updates/deletes the conditional form)"
                )
            if interaction.kind in ("create", "update"):
                if not isinstance(resource, Mapping):
                    raise BadRequestError("has no resource")
                check_body(principal, interaction, resource)
        except (PermissionDenied, NotFoundError, BadRequestError) as error:
            raise type(error)(f"Bundle entry {index}: {error.detail}") from None
