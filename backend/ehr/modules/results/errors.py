"""The results module's refusals (each a 4xx problem with a stable ``code``)."""

# Error class names say what happened in the domain's words (as in ehr.core.errors).
# ruff: noqa: N818

from __future__ import annotations

from ehr.core.errors import ConflictError, NotFoundError, PermissionDenied, RequestValidationFailed

__all__ = [
    "AlreadyAcknowledged",
    "EffectiveInFuture",
    "IssuedBeforeEffective",
    "LocationNotFound",
    "NoCriticalResult",
    "OrderChanged",
    "OrderNotActive",
    "OrderNotFound",
    "WorklistNotForPatients",
]


class OrderNotFound(RequestValidationFailed):
    """The order does not exist in this tenant, or is another patient's (not told apart)."""

    code = "order_not_found"
    title = "Order not found for this patient"


class OrderNotActive(ConflictError):
    """The order cannot take results: revoked, entered-in-error, completed, on hold or a draft."""

    code = "order_not_active"
    title = "The order is not active"


class OrderChanged(ConflictError):
    """The order changed while the results were being recorded (its If-Match lost)."""

    code = "order_changed"
    title = "The order changed meanwhile"


class LocationNotFound(RequestValidationFailed):
    """The unit a critical result is routed to is not a Location of this tenant."""

    code = "location_not_found"
    title = "Location not found"


class EffectiveInFuture(RequestValidationFailed):
    code = "effective_in_future"
    title = "Collection time in the future"


class IssuedBeforeEffective(RequestValidationFailed):
    code = "issued_before_effective"
    title = "Issued before the specimen was collected"


class NoCriticalResult(NotFoundError):
    """The report has no acknowledgement item (it is not critical)."""

    code = "no_critical_result"
    title = "No critical result to acknowledge"


class AlreadyAcknowledged(ConflictError):
    code = "already_acknowledged"
    title = "The critical result was already acknowledged"


class WorklistNotForPatients(PermissionDenied):
    """The tenant-wide worklist is for staff; a portal user sees its own results only."""

    code = "permission_denied"
    title = "Permission denied"
