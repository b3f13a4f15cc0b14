"""The one error handler: every error a caller sees is rendered here.

* Business API (everything except ``/fhir``): RFC 9457 ``application/problem+json`` with
  ``type`` (``https://ehr.example/problems/<code>``), ``title``, ``status``, ``detail``,
  ``instance`` (the request path), ``code`` (stable, from the :class:`~ehr.core.errors.AppError`
  class), ``request_id`` and, for validation failures, ``errors``. See docs/adr/0002-error-shape.md.
* FHIR-facing routes (``/fhir`` and below): a FHIR ``OperationOutcome`` as
  ``application/fhir+json``; an upstream (HAPI) OperationOutcome carried in
  ``extra["operation_outcome"]`` is passed through unchanged.

Response headers an :class:`~ehr.core.errors.AppError` carries (``exc.headers``:
``WWW-Authenticate``
on 401, ``Retry-After`` on 429, ...) are sent with the error.

Sources handled: :class:`~ehr.core.errors.AppError` (and ``ehr.fhir.errors``), FastAPI's
``RequestValidationError`` (422), Starlette's ``HTTPException`` (unknown route 404, 405, ...) and
any other exception (500 ``internal_error``; logged with the request id, never echoed).
:func:`error_response` is the same renderer for the pure-ASGI middleware (413, 500).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from ehr.core.errors import AppError
from ehr.core.outages import unavailable_error
from ehr.core.request_context import request_id_var

__all__ = [
    "FHIR_JSON",
    "PROBLEM_JSON",
    "PROBLEM_TYPE_BASE",
    "FieldError",
    "ProblemDetails",
    "error_response",
    "handle_exception",
    "install_error_handlers",
    "is_fhir_path",
    "problem_responses",
    "status_description",
]

logger = structlog.get_logger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
FHIR_JSON: Final = "application/fhir+json"
# Stable problem type URIs: PROBLEM_TYPE_BASE + code. Identifiers first; documentation may be
# served there later. Never change a published one (ADR 0002).
PROBLEM_TYPE_BASE: Final = "https://ehr.example/problems/"
# Where our own codes live inside an OperationOutcome issue's details.coding.
PROBLEM_CODE_SYSTEM: Final = "https://ehr.example/problems"

# Codes for Starlette/FastAPI HTTPExceptions (raised by routing, not by our code).
_HTTP_STATUS_CODES: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "Bad request"),
    401: ("authentication_required", "Authentication required"),
    403: ("permission_denied", "Permission denied"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("too_many_requests", "Too many requests"),
}

# HTTP status → OperationOutcome.issue.code (http://hl7.org/fhir/issue-type).
_ISSUE_CODES: Final[Mapping[int, str]] = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    502: "transient",
    503: "transient",
    504: "timeout",
}

# Extension members an AppError's ``extra`` may not override, and ones never shown on the
# business API (upstream OperationOutcomes may quote input).
_RESERVED_MEMBERS: Final = frozenset(
    {"type", "title", "status", "detail", "instance", "code", "request_id", "errors"}
)
_INTERNAL_EXTRA: Final = frozenset({"operation_outcome", "upstream_status"})


# --- schemas (OpenAPI) ----------------------------------------------------------------------------


class FieldError(BaseModel):
    """One failed validation: where, what, and a machine-readable type. Never the input value."""

    loc: list[str | int] = Field(description="Path to the failing value, e.g. ['query', '_count'].")
    message: str
    type: str = Field(description="Pydantic error type, e.g. 'less_than_equal'.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem document returned by every business-API error."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="Stable URI identifying the problem type: https://ehr.example/problems/<code>."
    )
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="Explanation of this occurrence (never PHI).")
    instance: str = Field(description="The request path.")
    code: str = Field(description="Stable machine-readable error code.")
    request_id: str | None = Field(description="The request id (X-Request-ID).")
    errors: list[FieldError] | None = Field(
        default=None, description="Validation failures (only for code 'validation_failed')."
    )


_STATUS_DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "Bad request",
    401: "Authentication required",
    403: "Permission denied",
    404: "Not found",
    409: "Conflict",
    410: "Gone (deleted)",
    412: "Precondition failed",
    428: "Precondition required (send If-Match)",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests (see Retry-After)",
    500: "Internal error",
    502: "Upstream (FHIR server) error",
    503: "A backing service is unavailable",
    504: "A backing service timed out",
}


def status_description(status: int) -> str:
    """The short description of an error status in the OpenAPI document."""
    return _STATUS_DESCRIPTIONS.get(status, "Error")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a business route: each status documented as a problem document."""
    return {
        status: {
            "description": status_description(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }


# --- classification -------------------------------------------------------------------------------


@dataclass(slots=True)
class _ErrorInfo:
    status: int
    code: str
    title: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    errors: list[FieldError] | None = None
    operation_outcome: dict[str, Any] | None = None


def _validation_errors(errors: Sequence[Any]) -> list[FieldError]:
    result: list[FieldError] = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        # Deliberately not "input" or "ctx": they echo what the caller sent (possibly PHI).
        result.append(
            FieldError(
                loc=loc,
                message=str(error.get("msg", "invalid")),
                type=str(error.get("type", "value_error")),
            )
        )
    return result


def _classify(exc: BaseException) -> _ErrorInfo:
    if isinstance(exc, AppError):
        extra = {
            key: value
            for key, value in exc.extra.items()
            if key not in _RESERVED_MEMBERS and key not in _INTERNAL_EXTRA
        }
        outcome = exc.extra.get("operation_outcome")
        return _ErrorInfo(
            status=exc.status_code,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            headers=dict(exc.headers),
            extra=extra,
            operation_outcome=(
                outcome
                if isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome"
                else None
            ),
        )
    if isinstance(exc, RequestValidationError):
        return _ErrorInfo(
            status=422,
            code="validation_failed",
            title="Request validation failed",
            detail="The request parameters or body did not validate.",
            errors=_validation_errors(exc.errors()),
        )
    if isinstance(exc, StarletteHTTPException):
        code, title = _HTTP_STATUS_CODES.get(exc.status_code, (f"http_{exc.status_code}", "Error"))
        if exc.status_code == 404:
            detail = "No resource at this path."
        elif exc.status_code == 405:
            detail = "This method is not allowed on this path."
        else:
            detail = exc.detail if isinstance(exc.detail, str) else title
        return _ErrorInfo(
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            headers=dict(exc.headers or {}),
        )
    return _ErrorInfo(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="An unexpected error occurred. Quote the request id when reporting it.",
    )


# --- rendering ------------------------------------------------------------------------------------


def is_fhir_path(path: str) -> bool:
    """True for FHIR-facing routes (``/fhir`` and below), which answer with OperationOutcome."""
    return path == "/fhir" or path.startswith("/fhir/")


def _problem_body(info: _ErrorInfo, instance: str, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        **jsonable_encoder(info.extra),
        "type": PROBLEM_TYPE_BASE + info.code,
        "title": info.title,
        "status": info.status,
        "detail": info.detail,
        "instance": instance,
        "code": info.code,
        "request_id": request_id,
    }
    if info.errors is not None:
        body["errors"] = [error.model_dump() for error in info.errors]
    return body


def _operation_outcome(info: _ErrorInfo, request_id: str | None) -> dict[str, Any]:
    if info.operation_outcome is not None:
        return info.operation_outcome
    issue_code = _ISSUE_CODES.get(info.status, "invalid" if info.status < 500 else "exception")
    details = {
        "coding": [{"system": PROBLEM_CODE_SYSTEM, "code": info.code}],
        "text": info.title,
    }
    issues: list[dict[str, Any]]
    if info.errors:
        issues = [
            {
                "severity": "error",
                "code": "invalid" if info.status == 422 else issue_code,
                "details": details,
                "diagnostics": f"{'.'.join(str(p) for p in error.loc)}: {error.message}",
            }
            for error in info.errors
        ]
    else:
        issues = [
            {
                "severity": "fatal" if info.status >= 500 else "error",
                "code": issue_code,
                "details": details,
                "diagnostics": info.detail,
            }
        ]
    outcome: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": issues}
    if request_id:
        outcome["id"] = request_id
    return outcome


def _log(info: _ErrorInfo, exc: BaseException, path: str) -> None:
    if info.status >= 500 and not isinstance(exc, AppError | StarletteHTTPException):
        logger.error(
            "http.request.unhandled_exception",
            error_type=type(exc).__name__,
            path=path,
            exc_info=exc,
        )
    elif info.status >= 500:
        logger.warning("http.request.failed", code=info.code, status=info.status, path=path)
    else:
        logger.info("http.request.rejected", code=info.code, status=info.status, path=path)


def error_response(exc: BaseException, scope: Scope) -> Response:
    """Render ``exc`` for the request in ``scope`` (problem+json or OperationOutcome)."""
    # A database (or Redis) that cannot be reached is a 503, not a 500 (ehr.core.outages, ADR 0013).
    exc = unavailable_error(exc) or exc
    info = _classify(exc)
    path = str(scope.get("path", ""))
    request_id = request_id_var.get()
    _log(info, exc, path)
    if is_fhir_path(path):
        return JSONResponse(
            _operation_outcome(info, request_id),
            status_code=info.status,
            headers=info.headers,
            media_type=FHIR_JSON,
        )
    return JSONResponse(
        _problem_body(info, path, request_id),
        status_code=info.status,
        headers=info.headers,
        media_type=PROBLEM_JSON,
    )


async def handle_exception(request: Request, exc: Exception) -> Response:
    """The exception handler registered for every error source."""
    return error_response(exc, request.scope)


def install_error_handlers(app: FastAPI) -> None:
    """Register :func:`handle_exception` for every error source on ``app``."""
    for source in (AppError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(source, handle_exception)
