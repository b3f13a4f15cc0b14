"""Parse an incoming ``/fhir/...`` request into the FHIR interaction it asks for.

The result (:class:`ParsedInteraction`) carries exactly the fields of the policy's
``FhirInteraction`` (:mod:`ehr.platform.gateway.fhir_requests`), which
:mod:`ehr.platform.gateway.enforcement` builds from it.
Anything that is not FHIR REST grammar — HAPI's MCP endpoint, system ``_history`` (unsupported
across partitions), an operation off the allow-list — is refused here with 403, before any
policy or upstream call.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from ehr.core.errors import BadRequestError, NotFoundError, PermissionDenied
from ehr.fhir.addressing import (
    ID_PATTERN,
    OPERATION_PATTERN,
    RESOURCE_TYPE_PATTERN,
)
from ehr.platform.tenancy.service import RESERVED_SLUGS, SLUG_PATTERN

__all__ = [
    "InteractionKind",
    "OperationNotAllowed",
    "ParsedInteraction",
    "check_operation",
    "parse_interaction",
    "split_tenant_base",
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

# Query parameters that make PUT/PATCH/DELETE on a type (or POST with If-None-Exist) conditional.
_METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})


class OperationNotAllowed(PermissionDenied):
    """The gateway does not forward this operation or path (403 OperationOutcome)."""

    code = "fhir_operation_not_allowed"
    title = "Operation not allowed"


@dataclass(frozen=True, slots=True)
class ParsedInteraction:
    """One FHIR interaction: the fields of the policy's ``FhirInteraction``."""

    kind: InteractionKind
    method: str
    resource_type: str | None
    resource_id: str | None
    operation: str | None
    params: tuple[tuple[str, str], ...]
    conditional: bool = False
    # Not part of the policy's interaction: the HAPI path relative to the tenant base, and a
    # vread's version id.
    version_id: str | None = None

    def with_params(self, params: Sequence[tuple[str, str]]) -> ParsedInteraction:
        return replace(self, params=tuple(params))

    @property
    def path(self) -> str:
        """The path relative to the tenant base (``Patient/1/_history/2``, ``$export``...)."""
        segments: list[str] = []
        if self.resource_type:
            segments.append(self.resource_type)
        if self.resource_id:
            segments.append(self.resource_id)
        if self.kind == "history":
            segments.append("_history")
        elif self.kind == "vread" and self.version_id:
            segments += ["_history", self.version_id]
        elif self.kind == "capabilities":
            segments.append("metadata")
        elif self.kind == "search" and self.method == "POST" and self.resource_type:
            segments.append("_search")
        if self.operation:
            segments.append(self.operation)
        return "/".join(segments)


def _refuse(detail: str) -> OperationNotAllowed:
    return OperationNotAllowed(detail)


def _type(segment: str) -> str:
    if not RESOURCE_TYPE_PATTERN.fullmatch(segment):
        raise _refuse("This path is not served by the FHIR gateway")
    return segment


def _id(segment: str, what: str = "resource id") -> str:
    if not ID_PATTERN.fullmatch(segment) or not segment.strip("."):
        raise BadRequestError(f"A FHIR {what} is 1-64 letters, digits, '-' or '.'")
    return segment


def check_operation(
    operation: str, allowed: Collection[str], admin_allowed: Collection[str], *, is_admin: bool
) -> str:
    """``operation`` if the gateway forwards it for this caller, else 403."""
    if not OPERATION_PATTERN.fullmatch(operation):
        raise BadRequestError("A FHIR operation name looks like '$everything'")
    if operation in allowed or (is_admin and operation in admin_allowed):
        return operation
    raise _refuse(f"The operation {operation} is not available through the FHIR gateway")


def split_tenant_base(path: str) -> tuple[str | None, str]:
    """``("demo", "Patient/1")`` for ``demo/Patient/1``; ``(None, path)`` without a tenant.

    Clients may use the tenant-qualified base ``/fhir/{tenant}`` (the shape of HAPI's own URL
    partitioning): a first segment that is a tenant slug (lower case, never a resource type,
    ``metadata`` or an operation) names the tenant. The principal's tenant still decides.
    """
    head, _, rest = path.strip("/").partition("/")
    if SLUG_PATTERN.fullmatch(head) and head not in RESERVED_SLUGS:
        return head, rest
    return None, path


def parse_interaction(
    method: str,
    path: str,
    params: Sequence[tuple[str, str]],
    *,
    has_if_none_exist: bool = False,
) -> ParsedInteraction:
    """The interaction for ``method`` on ``path`` (relative to ``/fhir``) with ``params``.

    Operations are returned unchecked: see :func:`check_operation`. Raises 403 for paths that
    are not FHIR REST (or not allowed), 400 for malformed ids, 405-like refusals as 403.
    """
    method = method.upper()
    segments = [s for s in path.strip("/").split("/") if s] if path.strip("/") else []
    pairs = tuple(params)
    has_params = bool(pairs)

    def build(kind: InteractionKind, **fields: object) -> ParsedInteraction:
        values: dict[str, object] = {
            "resource_type": None,
            "resource_id": None,
            "operation": None,
            "params": pairs,
        }
        values.update(fields)
        return ParsedInteraction(kind=kind, method=method, **values)  # type: ignore[arg-type]

    if any(s in {".", ".."} for s in segments):
        raise _refuse("This path is not served by the FHIR gateway")

    if not segments:
        if method == "POST":
            # transaction or batch: the Bundle's type decides (the router reads it).
            return build("transaction")
        if method == "GET" and any(name == "_getpages" for name, _ in pairs):
            return build("search")
        raise _refuse("System-level search is not available through the FHIR gateway")

    first = segments[0]
    if first == "metadata" and len(segments) == 1:
        if method != "GET":
            raise _refuse("metadata is read-only")
        return build("capabilities")
    if first == "_history":
        raise _refuse(
            "System history is not supported across tenants; use type or instance history"
        )
    if first.startswith("$"):
        if len(segments) != 1:
            raise _refuse("This path is not served by the FHIR gateway")
        return build("operation", operation=first)

    resource_type = _type(first)
    if len(segments) == 1:
        if method == "GET":
            return build("search", resource_type=resource_type)
        if method == "POST":
            return build("create", resource_type=resource_type, conditional=has_if_none_exist)
        if method in {"PUT", "PATCH", "DELETE"} and has_params:
            kind: InteractionKind = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]  # type: ignore[assignment]
            return build(kind, resource_type=resource_type, conditional=True)
        raise _refuse(
            f"{method} on a resource type needs search parameters (a conditional request)"
        )

    second = segments[1]
    if len(segments) == 2:
        if second == "_search":
            if method != "POST":
                raise _refuse("_search is POST only")
            return build("search", resource_type=resource_type)
        if second == "_history":
            if method != "GET":
                raise _refuse("history is read-only")
            return build("history", resource_type=resource_type)
        if second.startswith("$"):
            return build("operation", resource_type=resource_type, operation=second)
        resource_id = _id(second)
        instance: dict[str, InteractionKind] = {
            "GET": "read",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }
        if method not in instance:
            raise _refuse(f"{method} is not allowed on a resource instance")
        return build(instance[method], resource_type=resource_type, resource_id=resource_id)

    resource_id = _id(second)
    third = segments[2]
    if len(segments) == 3:
        if third == "_history" and method == "GET":
            return build("history", resource_type=resource_type, resource_id=resource_id)
        if third.startswith("$"):
            return build(
                "operation", resource_type=resource_type, resource_id=resource_id, operation=third
            )
    if len(segments) == 4 and third == "_history" and method == "GET":
        return build(
            "vread",
            resource_type=resource_type,
            resource_id=resource_id,
            version_id=_id(segments[3], "version id"),
        )
    raise NotFoundError("No FHIR interaction has this path")


_BODY_KINDS: Final = frozenset({"create", "update", "patch", "transaction", "batch", "operation"})


def takes_body(interaction: ParsedInteraction) -> bool:
    """Whether the request carries a FHIR body (POST _search carries a form instead)."""
    return interaction.method in _METHODS_WITH_BODY and interaction.kind in _BODY_KINDS
