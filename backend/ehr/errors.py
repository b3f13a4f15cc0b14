"""The service's one error hierarchy.

Every error a caller may see is an :class:`AppError` subclass carrying its HTTP status, a stable
machine-readable ``code`` and a short human ``title``. One handler (installed by
``install_error_handlers`` in :mod:`ehr.error_handlers`) renders them as RFC 9457
``application/problem+json`` on the business API and as a FHIR ``OperationOutcome`` on FHIR-facing
routes. ``detail`` must never carry PHI (names, birth dates, note text) or stack traces.

Hierarchy::

    AppError
    ├── BadRequestError            400 bad_request
    ├── RequestValidationFailed    422 validation_failed   (payload did not validate)
    ├── AuthenticationRequired     401 authentication_required
    ├── PermissionDenied           403 permission_denied
    ├── NotFoundError              404 not_found
    ├── ConflictError              409 conflict
    ├── PayloadTooLarge            413 payload_too_large
    ├── TooManyRequests            429 too_many_requests   (throttling; Retry-After in extra)
    ├── DependencyUnavailable      503 dependency_unavailable
    └── (FHIR edge errors live in ehr.fhir.errors and subclass the ones above)
"""

# Class names say what happened in the domain's words (PermissionDenied, PayloadTooLarge);
# an "Error" suffix on each would add nothing.
# ruff: noqa: N818

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AppError",
    "AuthenticationRequired",
    "BadRequestError",
    "ConflictError",
    "DependencyUnavailable",
    "NotFoundError",
    "PayloadTooLarge",
    "PermissionDenied",
    "RequestValidationFailed",
    "TooManyRequests",
]


class AppError(Exception):
    """Base of every error the API reports to a caller."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.title
        # Extra members for the problem document (RFC 9457 extension members). No PHI.
        self.extra: dict[str, Any] = extra or {}
        super().__init__(self.detail)


class BadRequestError(AppError):
    """The request is malformed in a way the schema could not express."""

    status_code = 400
    code = "bad_request"
    title = "Bad request"


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


class PayloadTooLarge(AppError):
    """The request body exceeds the configured limit."""

    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class TooManyRequests(AppError):
    """The caller exceeded a rate limit; ``extra["retry_after"]`` (seconds) when known."""

    status_code = 429
    code = "too_many_requests"
    title = "Too many requests"


class DependencyUnavailable(AppError):
    """A backing service (HAPI, PostgreSQL, Redis) cannot be reached right now; retry later."""

    status_code = 503
    code = "dependency_unavailable"
    title = "A backing service is unavailable"
