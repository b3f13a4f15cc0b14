"""The service's one error hierarchy.

Every error a caller may see is an :class:`AppError` subclass carrying its HTTP status, a stable
machine-readable ``code`` and a short human ``title``. One handler (installed by
``install_error_handlers`` in :mod:`ehr.core.error_handlers`) renders them as RFC 9457
``application/problem+json`` on the business API and as a FHIR ``OperationOutcome`` on FHIR-facing
routes. ``detail`` must never carry PHI (names, birth dates, note text) or stack traces.

Hierarchy::

    AppError
    ├── BadRequestError            400 bad_request
    │   └── MalformedBody          400 malformed_body      (not JSON, too deep, bad text/numbers)
    ├── RequestValidationFailed    422 validation_failed   (payload did not validate)
    ├── AuthenticationRequired     401 authentication_required
    ├── PermissionDenied           403 permission_denied
    ├── NotFoundError              404 not_found
    ├── ConflictError              409 conflict
    ├── PreconditionFailed         412 precondition_failed (e.g. CDS Hooks: data unobtainable)
    ├── PayloadTooLarge            413 payload_too_large
    ├── UnsupportedMediaType       415 unsupported_media_type
    ├── TooManyRequests            429 too_many_requests   (throttling; sends Retry-After)
    ├── DependencyUnavailable      503 dependency_unavailable
    │   └── AuditUnavailable       503 audit_unavailable   (the audit record could not be written)
    └── (FHIR edge errors live in ehr.fhir.errors and subclass the ones above)

Response headers: an error may carry HTTP headers (``headers=`` or the class's
``default_headers``); the handler sends them with the problem document. 401 sends
``WWW-Authenticate: Bearer``; 429 sends ``Retry-After`` when ``retry_after`` (seconds) is given.
"""

# Class names say what happened in the domain's words (PermissionDenied, PayloadTooLarge);
# an "Error" suffix on each would add nothing.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AppError",
    "AuditUnavailable",
    "AuthenticationRequired",
    "BadRequestError",
    "ConflictError",
    "DependencyUnavailable",
    "MalformedBody",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDenied",
    "PreconditionFailed",
    "RequestValidationFailed",
    "TooManyRequests",
    "UnsupportedMediaType",
]


class AppError(Exception):
    """Base of every error the API reports to a caller."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"
    # Response headers every instance sends (e.g. WWW-Authenticate on 401).
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        # Extra members for the problem document (RFC 9457 extension members). No PHI.
        self.extra: dict[str, Any] = extra or {}
        # Response headers sent with the error (class defaults, overridden by ``headers``).
        self.headers: dict[str, str] = {**self.default_headers, **(headers or {})}
        super().__init__(self.detail)


class BadRequestError(AppError):
    """The request is malformed in a way the schema could not express."""

    status_code = 400
    code = "bad_request"
    title = "Bad request"


class MalformedBody(BadRequestError):
    """The body cannot be taken at all: not UTF-8 JSON, nested too deep, a number that is not
    finite, or text that is not Unicode scalar values (a lone surrogate) or holds NUL."""

    code = "malformed_body"
    title = "Malformed request body"


class RequestValidationFailed(AppError):
    """The payload or parameters failed validation."""

    status_code = 422
    code = "validation_failed"
    title = "Request validation failed"


class AuthenticationRequired(AppError):
    """No valid credentials were presented."""

    status_code = 401
    code = "authentication_required"
    title = "Authentication required"
    # RFC 9110 §15.5.2: a 401 names the scheme to use (RFC 6750 for bearer tokens).
    default_headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": 'Bearer realm="ehr"'}


class PermissionDenied(AppError):
    """The caller is authenticated but may not do this."""

    status_code = 403
    code = "permission_denied"
    title = "Permission denied"


class NotFoundError(AppError):
    """The addressed thing does not exist (or the caller may not know it exists)."""

    status_code = 404
    code = "not_found"
    title = "Not found"


class ConflictError(AppError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    """What the request needs cannot be obtained (CDS Hooks: prefetch missing and unfetchable)."""

    status_code = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLarge(AppError):
    """The request body exceeds the configured limit."""

    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(AppError):
    """The body's media type is not one this route takes."""

    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class TooManyRequests(AppError):
    """The caller exceeded a rate limit.

    ``retry_after`` (seconds; or ``extra["retry_after"]``) becomes the ``Retry-After`` header and
    the ``retry_after`` member of the problem document.
    """

    status_code = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = dict(extra or {})
        if retry_after is None and isinstance(extra.get("retry_after"), int | float):
            retry_after = int(extra["retry_after"])
        if retry_after is not None:
            retry_after = max(0, int(retry_after))
            extra["retry_after"] = retry_after
            headers = {"Retry-After": str(retry_after), **(headers or {})}
        super().__init__(detail, extra=extra, headers=headers)


class DependencyUnavailable(AppError):
    """A backing service (HAPI, PostgreSQL, Redis) cannot be reached right now; retry later."""

    status_code = 503
    code = "dependency_unavailable"
    title = "A backing service is unavailable"


class AuditUnavailable(DependencyUnavailable):
    """The audit record of a PHI access could not be written: the request fails instead."""

    code = "audit_unavailable"
    title = "The audit trail is unavailable"
