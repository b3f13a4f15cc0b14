"""The policy's view of one FHIR request: :class:`FhirInteraction` and :func:`parse_request`.

:func:`parse_request` reads ``method`` + ``path`` (relative to the tenant's FHIR base) + query
parameters into the interaction the policy decides on (used for a transaction's or batch's
entries; the gateway's own requests are parsed by :mod:`ehr.platform.gateway.interactions`, whose
``ParsedInteraction`` carries the same fields). Malformed requests are 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ehr.core.errors import BadRequestError
from ehr.platform.gateway.interactions import InteractionKind

__all__ = ["PAGE_PARAMS", "FhirInteraction", "InteractionKind", "is_page_fetch", "parse_request"]


@dataclass(frozen=True, slots=True)
class FhirInteraction:
    kind: InteractionKind
    method: str
    resource_type: str | None
    resource_id: str | None
    operation: str | None  # e.g. "$everything"
    params: tuple[tuple[str, str], ...]
    conditional: bool = False


PAGE_PARAMS: Final = frozenset(
    {"_getpages", "_getpagesoffset", "_count", "_pretty", "_format", "_bundletype"}
)


def is_page_fetch(params: tuple[tuple[str, str], ...]) -> bool:
    names = {name for name, _ in params}
    return "_getpages" in names and names <= PAGE_PARAMS


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
