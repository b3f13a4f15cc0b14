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

Every refusal is :class:`ehr.core.errors.PermissionDenied` (403) or, for another patient's resource
addressed by id, :class:`ehr.core.errors.NotFoundError` (404); details never carry data.

Action letters per interaction kind (SMART v2): read/vread ``r``; search ``s``; create ``c``;
update/patch ``u``; delete ``d``; history ``r`` + ``s``; any conditional interaction also ``s``
(its criteria are a search). System-level search/history need a ``*`` scope (or, for a search
with ``_type``, the scope on each listed type). ``capabilities`` is always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit

from ehr.core.errors import BadRequestError, NotFoundError, PermissionDenied
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.compartment import (
    COMPARTMENT,
    SHARED_READ_TYPES,
    check_compartment_body,
    compartment_param,
    patient_reference,
)
from ehr.platform.gateway.scopes import grants, grants_any

__all__ = [
    "ADMIN_OPERATIONS",
    "ALLOWED_OPERATIONS",
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

InteractionKind = Literal[
    "read",
    "vread",
    "search",
    "create",
    "update",
    "patch",
    "delete",
    "history",
    "transaction",
    "batch",
    "capabilities",
    "operation",
]


@dataclass(frozen=True, slots=True)
class FhirInteraction:
    kind: InteractionKind
    method: str
    resource_type: str | None
    resource_id: str | None
    operation: str | None  # e.g. "$everything"
    params: tuple[tuple[str, str], ...]
    conditional: bool = False


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
_WRITES: Final = frozenset({"create", "update", "patch", "delete"})

# --- operations ---------------------------------------------------------------------------------

Level = Literal["system", "type", "instance"]


@dataclass(frozen=True, slots=True)
class OperationRule:
    levels: frozenset[Level]
    # Resource types it may be invoked on (None: any, or system level).
    resource_types: frozenset[str] | None
    # everything | validate | terminology | meta | export — see _operation_denial.
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


def in_patient_context(principal: Principal) -> bool:
    """True for a user token bound to a patient (the portal role): compartment rules apply."""
    return principal.kind == "user" and principal.patient_id is not None


def _operation_denial(
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
            if patient and resource_type is not None and not _patient_reachable(resource_type):
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
            if principal.kind != "api_key":
                return f"{name} is for system clients (API keys with system/*.rs)"
            return None if grants(principal, None, "rs") else denied
    return denied  # pragma: no cover - every requirement is matched above


def is_operation_allowed(principal: Principal, operation: str, resource_type: str | None) -> bool:
    """The allow-list decision for ``operation`` at system (None) or type level."""
    return _operation_denial(principal, operation, resource_type, None) is None


# --- authorize ----------------------------------------------------------------------------------


def _patient_reachable(resource_type: str) -> bool:
    return resource_type in COMPARTMENT or resource_type in SHARED_READ_TYPES


_PAGE_PARAMS: Final = frozenset(
    {"_getpages", "_getpagesoffset", "_count", "_pretty", "_format", "_bundletype"}
)


def _is_page_fetch(params: tuple[tuple[str, str], ...]) -> bool:
    names = {name for name, _ in params}
    return "_getpages" in names and names <= _PAGE_PARAMS


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
        reason = _operation_denial(
            principal,
            interaction.operation or "",
            interaction.resource_type,
            interaction.resource_id,
        )
        if reason is not None:
            raise PermissionDenied(reason)
        if in_patient_context(principal):
            _check_patient_operation(principal, interaction)
        return
    resource_type = interaction.resource_type
    if kind == "search" and resource_type is None and _is_page_fetch(interaction.params):
        # A page of an earlier search (already authorized and constrained); the gateway binds
        # page ids to their tenant (ehr.platform.gateway.pages).
        if not grants_any(principal, "s"):
            raise PermissionDenied("No scope grants search")
        return
    if any(name.startswith("_getpages") for name, _ in interaction.params):
        raise PermissionDenied("_getpages is only valid alone, on the base URL")
    if resource_type is None and kind not in ("search", "history"):
        raise BadRequestError(f"A {kind} needs a resource type")
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
        _check_patient_interaction(principal, interaction)
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


# --- patient context ----------------------------------------------------------------------------

_REFUSED_PARAMS: Final = frozenset(
    {"_filter", "_query", "_contained", "_containedType", "_type", "_list"}
)
_PASSTHROUGH_READ_PARAMS: Final = frozenset({"_elements", "_summary", "_format", "_pretty"})


def _own(principal: Principal) -> str:
    if principal.patient_id is None:  # pragma: no cover - callers check in_patient_context
        raise PermissionDenied("The token has no patient context")
    return principal.patient_id


def _check_patient_operation(principal: Principal, interaction: FhirInteraction) -> None:
    if interaction.resource_type is not None and not _patient_reachable(interaction.resource_type):
        raise PermissionDenied(
            f"{interaction.resource_type} is outside a patient-context token's compartment"
        )
    _check_params(principal, interaction.resource_type, interaction.params)


def _check_params(
    principal: Principal, resource_type: str | None, params: tuple[tuple[str, str], ...]
) -> None:
    """Structural refusals for patient context: chains, _has, includes, compartment params."""
    own = _own(principal)
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


def _check_patient_interaction(principal: Principal, interaction: FhirInteraction) -> None:
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
    own = _own(principal)
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
        and _is_page_fetch(interaction.params)
    ):
        return interaction
    if interaction.kind == "operation":
        _check_patient_operation(principal, interaction)
        return interaction
    _check_patient_interaction(principal, interaction)
    resource_type = interaction.resource_type or ""
    if resource_type in SHARED_READ_TYPES:
        return interaction
    own = _own(principal)
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
    if in_patient_context(principal) and interaction.kind in ("create", "update"):
        check_compartment_body(resource_type, resource, _own(principal))


_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _resource_type(segment: str) -> str:
    if not _TYPE.fullmatch(segment):
        raise BadRequestError("Not a FHIR resource type")
    return segment


def _resource_id(segment: str) -> str:
    if not _ID.fullmatch(segment):
        raise BadRequestError("Not a FHIR resource id")
    return segment


def parse_request(
    method: str, path: str, params: tuple[tuple[str, str], ...] = ()
) -> FhirInteraction:
    """The interaction of ``method`` on ``path`` (relative to the tenant's FHIR base)."""
    method = method.upper()
    segments = [s for s in path.strip("/").split("/") if s]
    n = len(segments)

    def make(
        kind: InteractionKind,
        rtype: str | None = None,
        rid: str | None = None,
        operation: str | None = None,
        conditional: bool = False,
    ) -> FhirInteraction:
        return FhirInteraction(kind, method, rtype, rid, operation, params, conditional)

    if n and segments[-1].startswith("$"):
        rtype = _resource_type(segments[0]) if n >= 2 else None
        rid = _resource_id(segments[1]) if n == 3 else None
        if n > 3 or method not in ("GET", "POST"):
            raise BadRequestError("Unsupported operation request")
        return make("operation", rtype, rid, segments[-1])
    if n == 0:
        if method == "POST":
            return make("transaction")
        if method == "GET":
            return make("search")
    elif n == 1:
        head = segments[0]
        if head == "metadata" and method == "GET":
            return make("capabilities")
        if head == "_history" and method == "GET":
            return make("history")
        if head == "_search" and method == "POST":
            return make("search")
        rtype = _resource_type(head)
        if method == "GET":
            return make("search", rtype)
        if method == "POST":
            return make("create", rtype)
        if method in ("PUT", "PATCH", "DELETE"):
            if not params:
                raise BadRequestError("A conditional interaction needs search criteria")
            kind: InteractionKind = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]  # type: ignore[assignment]
            return make(kind, rtype, conditional=True)
    elif n == 2:
        rtype = _resource_type(segments[0])
        if segments[1] == "_search" and method == "POST":
            return make("search", rtype)
        if segments[1] == "_history" and method == "GET":
            return make("history", rtype)
        rid = _resource_id(segments[1])
        by_method: dict[str, InteractionKind] = {
            "GET": "read",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }
        if method in by_method:
            return make(by_method[method], rtype, rid)
    elif n in (3, 4) and segments[2] == "_history" and method == "GET":
        rtype, rid = _resource_type(segments[0]), _resource_id(segments[1])
        if n == 3:
            return make("history", rtype, rid)
        _resource_id(segments[3])
        return make("vread", rtype, rid)
    raise BadRequestError("Unsupported FHIR request")


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
