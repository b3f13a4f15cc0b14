"""Errors raised at the HAPI edge, and the one table that maps HAPI's answers onto them.

Every class subclasses the service's hierarchy in :mod:`ehr.core.errors` (no second root), so the
one
error handler renders them; the status and stable ``code`` live on the class.

Upstream answer → error (``status`` / ``code`` we report)::

    HAPI 400                → FhirBadRequest(BadRequestError)                 400 fhir_bad_request
    HAPI 401, 403           → FhirUpstreamRejected(FhirUpstreamError)    502 fhir_upstream_rejected
                              (HAPI refused *our* service: misconfiguration, not the caller's fault)
    HAPI 404                → FhirResourceNotFound(NotFoundError)             404 fhir_not_found
    HAPI 409                → FhirConflict(ConflictError)                     409 fhir_conflict
    HAPI 410                → FhirResourceGone(NotFoundError)                 410 fhir_gone
    HAPI 412                → FhirPreconditionFailed(ConflictError)    412 fhir_precondition_failed
    HAPI 422                → FhirUnprocessable(RequestValidationFailed)      422 fhir_unprocessable
    HAPI 429                → FhirUnavailable(DependencyUnavailable)          503 fhir_unavailable
    other HAPI 4xx          → FhirBadRequest                                  400 fhir_bad_request
    HAPI 5xx, odd 3xx, a
    body that is not JSON   → FhirUpstreamError(AppError)                    502 fhir_upstream_error
    connect error / refused → FhirUnavailable(DependencyUnavailable)          503 fhir_unavailable
    timeout (connect, read,
    write, pool)            → FhirTimeout(DependencyUnavailable)              504 fhir_timeout
    (these two: error_for_transport)
    an external server's
    answer over its limit   → FhirResponseTooLarge(FhirUpstreamError)  502 fhir_response_too_large

The FHIR gateway passes HAPI's answers through as they are (HAPI's own OperationOutcome reaches
the caller) except for failures of HAPI itself, which :func:`passthrough_error` maps::

    HAPI 502, 503, 504      → FhirUnavailable                                 503 fhir_unavailable
                              (HAPI, or a proxy in front of it, is down or restarting)
    other HAPI 5xx          → FhirUpstreamError                            502 fhir_upstream_error

Before a request leaves, the client validates what it puts into a URL; a bad value raises
``FhirInvalidRequest(BadRequestError)`` 400 or one of its subclasses
(``fhir_invalid_tenant``, ``fhir_invalid_resource_type``, ``fhir_invalid_id``).

Each error raised from an upstream answer keeps a sanitised copy of HAPI's ``OperationOutcome``
(issue severity, code, truncated diagnostics and expressions; no narrative) in
``extra["operation_outcome"]`` so the FHIR gateway can pass it on, and HAPI's status in
``extra["upstream_status"]``. For 5xx answers the diagnostics are dropped: they describe HAPI's
internals (SQL, Java exceptions), which callers must not see. ``detail`` is a fixed sentence:
never a raw body, a stack trace or PHI.
"""

# The names follow ehr.core.errors (an HTTP meaning, not an "...Error" suffix):
# FhirResourceNotFound.
# ruff: noqa: N818

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import httpx

from ehr.core.errors import (
    AppError,
    BadRequestError,
    ConflictError,
    DependencyUnavailable,
    NotFoundError,
    RequestValidationFailed,
)

# Limits applied to what we keep from HAPI's OperationOutcome.
MAX_ISSUES: Final = 20
MAX_DIAGNOSTICS_CHARS: Final = 500
MAX_EXPRESSIONS: Final = 5
MAX_EXPRESSION_CHARS: Final = 200

_HAPI_MESSAGE_CODE = re.compile(r"\bHAPI-\d{4}\b")


# --- errors raised before a request is sent ---------------------------------------------------


class FhirInvalidRequest(BadRequestError):
    """Raised when a request to HAPI is malformed before it is sent (bad bundle type, operation
    name, parameters): nothing reached HAPI."""

    code = "fhir_invalid_request"
    title = "Invalid FHIR request"


class FhirInvalidTenant(FhirInvalidRequest):
    """Raised when a tenant name is not a valid HAPI partition name; nothing reached HAPI."""

    code = "fhir_invalid_tenant"
    title = "Invalid tenant name"


class FhirInvalidResourceType(FhirInvalidRequest):
    """Raised when a resource type is not shaped like a FHIR resource type; nothing reached HAPI."""

    code = "fhir_invalid_resource_type"
    title = "Invalid FHIR resource type"


class FhirInvalidId(FhirInvalidRequest):
    """Raised when a resource or version id is not a valid FHIR id; nothing reached HAPI."""

    code = "fhir_invalid_id"
    title = "Invalid FHIR id"


# --- errors translated from HAPI's answers ----------------------------------------------------


class FhirBadRequest(BadRequestError):
    """Raised when HAPI answers 400 (or another unclassified 4xx): the request was malformed."""

    code = "fhir_bad_request"
    title = "The FHIR server rejected the request"


class FhirResourceNotFound(NotFoundError):
    """Raised when HAPI answers 404: the resource (or endpoint) does not exist in this tenant."""

    code = "fhir_not_found"
    title = "FHIR resource not found"


class FhirResourceGone(NotFoundError):
    """Raised when HAPI answers 410: the resource was deleted. A kind of "not found"."""

    status_code = 410
    code = "fhir_gone"
    title = "FHIR resource deleted"


class FhirConflict(ConflictError):
    """Raised when HAPI answers 409 (e.g. a delete blocked by references, a concurrent write)."""

    code = "fhir_conflict"
    title = "FHIR resource conflict"


class FhirPreconditionFailed(ConflictError):
    """Raised when HAPI answers 412: a versioned update (If-Match) lost against a newer version,
    or a conditional interaction matched more than one resource."""

    status_code = 412
    code = "fhir_precondition_failed"
    title = "FHIR precondition failed"


class FhirUnprocessable(RequestValidationFailed):
    """Raised when HAPI answers 422: the resource failed HAPI's validation rules."""

    code = "fhir_unprocessable"
    title = "FHIR resource failed validation"


class FhirUpstreamError(AppError):
    """Raised when HAPI answers 5xx or with something that is not FHIR JSON (bad gateway)."""

    status_code = 502
    code = "fhir_upstream_error"
    title = "The FHIR server failed"


class FhirUpstreamRejected(FhirUpstreamError):
    """Raised when HAPI answers 401/403 to *our* service: credentials or network policy between
    this service and HAPI are misconfigured. Never the end user's fault, hence 502, not 401/403."""

    code = "fhir_upstream_rejected"
    title = "The FHIR server refused this service"


class FhirResponseTooLarge(FhirUpstreamError):
    """Raised when an external FHIR server (:mod:`ehr.fhir.external`) answers with more than is
    read from it."""

    code = "fhir_response_too_large"
    title = "The FHIR server sent more than is read"


class FhirUnavailable(DependencyUnavailable):
    """Raised when HAPI cannot be reached (connection refused, DNS, reset) or asks us to back off
    (429). Retry later."""

    code = "fhir_unavailable"
    title = "The FHIR server is unavailable"


class FhirTimeout(DependencyUnavailable):
    """Raised when HAPI does not answer in time (connect, read, write or connection-pool timeout).

    Reported as 504 Gateway Timeout rather than 503 so operators can tell a slow HAPI from an
    absent one; still a :class:`DependencyUnavailable`, so "retry later" handling covers both.
    """

    status_code = 504
    code = "fhir_timeout"
    title = "The FHIR server did not answer in time"


# --- translation --------------------------------------------------------------------------------


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sanitize_operation_outcome(
    outcome: Mapping[str, Any], *, keep_diagnostics: bool = True
) -> dict[str, Any]:
    """A copy of an OperationOutcome reduced to what may be passed on to callers.

    Keeps each issue's ``severity``, ``code``, ``diagnostics`` (truncated; dropped when
    ``keep_diagnostics`` is false) and ``expression`` (truncated); drops the narrative (``text``),
    ``details`` and extensions. At most :data:`MAX_ISSUES` issues.
    """
    issues: list[dict[str, Any]] = []
    raw_issues = outcome.get("issue")
    for raw in raw_issues if isinstance(raw_issues, list) else []:
        if not isinstance(raw, Mapping):
            continue
        issue: dict[str, Any] = {
            "severity": raw.get("severity") if isinstance(raw.get("severity"), str) else "error",
            "code": raw.get("code") if isinstance(raw.get("code"), str) else "exception",
        }
        diagnostics = raw.get("diagnostics")
        if keep_diagnostics and isinstance(diagnostics, str) and diagnostics:
            issue["diagnostics"] = _truncate(diagnostics, MAX_DIAGNOSTICS_CHARS)
        expressions = raw.get("expression")
        if isinstance(expressions, list):
            kept = [
                _truncate(e, MAX_EXPRESSION_CHARS)
                for e in expressions[:MAX_EXPRESSIONS]
                if isinstance(e, str)
            ]
            if kept:
                issue["expression"] = kept
        issues.append(issue)
        if len(issues) >= MAX_ISSUES:
            break
    return {"resourceType": "OperationOutcome", "issue": issues}


def parse_operation_outcome(content: bytes) -> dict[str, Any] | None:
    """HAPI's OperationOutcome from a response body, or ``None`` if the body is not one."""
    if not content:
        return None
    try:
        parsed = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome":
        return parsed
    return None


def hapi_message_code(outcome: Mapping[str, Any] | None) -> str | None:
    """The first ``HAPI-nnnn`` message code in an OperationOutcome's diagnostics (safe to log)."""
    if not outcome:
        return None
    issues = outcome.get("issue")
    for issue in issues if isinstance(issues, list) else []:
        diagnostics = issue.get("diagnostics") if isinstance(issue, Mapping) else None
        if isinstance(diagnostics, str) and (match := _HAPI_MESSAGE_CODE.search(diagnostics)):
            return match.group(0)
    return None


_BY_STATUS: Final[dict[int, tuple[type[AppError], str]]] = {
    400: (FhirBadRequest, "The FHIR server rejected the request as malformed"),
    401: (FhirUpstreamRejected, "The FHIR server refused this service's credentials"),
    403: (FhirUpstreamRejected, "The FHIR server refused this service access"),
    404: (FhirResourceNotFound, "The FHIR resource does not exist"),
    409: (FhirConflict, "The request conflicts with the FHIR resource's current state"),
    410: (FhirResourceGone, "The FHIR resource has been deleted"),
    412: (FhirPreconditionFailed, "The FHIR resource changed or the condition matched several"),
    422: (FhirUnprocessable, "The FHIR resource failed the server's validation"),
    429: (FhirUnavailable, "The FHIR server asked us to slow down"),
}


def error_for_status(status: int, content: bytes) -> AppError:
    """The error for a HAPI answer with a non-success ``status`` and body ``content``."""
    outcome = parse_operation_outcome(content)
    if status in _BY_STATUS:
        error_class, detail = _BY_STATUS[status]
    elif 400 <= status < 500:
        error_class, detail = FhirBadRequest, "The FHIR server rejected the request"
    else:
        error_class, detail = FhirUpstreamError, "The FHIR server failed to handle the request"
    extra: dict[str, Any] = {"upstream_status": status}
    if outcome is not None:
        extra["operation_outcome"] = sanitize_operation_outcome(
            outcome, keep_diagnostics=status < 500
        )
    return error_class(detail, extra=extra)


_UNAVAILABLE_STATUSES: Final = frozenset({502, 503, 504})


def passthrough_error(status: int) -> AppError | None:
    """The error a pass-through raises instead of forwarding HAPI's answer ``status``, or
    ``None`` when the answer is forwarded as it is (every status below 500)."""
    if status < 500:
        return None
    if status in _UNAVAILABLE_STATUSES:
        return FhirUnavailable("The FHIR server is unavailable")
    return FhirUpstreamError("The FHIR server failed to process the request")


def error_for_transport(exc: httpx.HTTPError) -> FhirTimeout | FhirUnavailable:
    """The error for a request that got no answer: a timeout (connect, read, write, pool) or a
    transport failure (refused, DNS, reset; any other ``httpx`` error)."""
    if isinstance(exc, httpx.TimeoutException):
        return FhirTimeout("The FHIR server did not answer in time")
    return FhirUnavailable("The FHIR server cannot be reached")
