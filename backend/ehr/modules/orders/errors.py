"""The refusals of the orders API, each a 4xx problem with a stable ``code`` (ADR 0020)."""

# Error class names say what happened in the domain's words (as in ehr.core.errors).
# ruff: noqa: N818

from __future__ import annotations

from ehr.core.errors import ConflictError, PermissionDenied, RequestValidationFailed

__all__ = [
    "MedicationSignNotPermitted",
    "OrderEncounterInvalid",
    "OrderKindMismatch",
    "OrderNotDraft",
    "OrderReasonRequired",
    "OrderReferenceInvalid",
    "OrderSignBlocked",
    "OrderTransitionNotAllowed",
]


class OrderTransitionNotAllowed(ConflictError):
    """The order's status does not allow this step (the lifecycle: ADR 0020)."""

    code = "order_transition_not_allowed"
    title = "The order's status does not allow this transition"


class OrderNotDraft(ConflictError):
    """Only a draft is edited; a signed order is changed by its transitions."""

    code = "order_not_draft"
    title = "Only a draft order can be edited"


class OrderSignBlocked(ConflictError):
    """Interruptive findings block the sign; the signer may override them with a reason."""

    code = "order-sign-blocked"
    title = "Signing is blocked by interruptive findings"


class OrderKindMismatch(RequestValidationFailed):
    """A draft is edited with a document of another kind (a lab draft stays a lab order)."""

    code = "order_kind_mismatch"
    title = "The document's kind is not the order's"


class OrderEncounterInvalid(RequestValidationFailed):
    """The encounter does not exist in the tenant or is another patient's."""

    code = "order_encounter_invalid"
    title = "Invalid encounter"


class OrderReferenceInvalid(RequestValidationFailed):
    """A referenced performer does not exist in the tenant."""

    code = "order_reference_invalid"
    title = "Invalid reference"


class OrderReasonRequired(RequestValidationFailed):
    """Revoking an order needs a reason."""

    code = "order_reason_required"
    title = "A reason is required"


class MedicationSignNotPermitted(PermissionDenied):
    """Signing (or resuming) a medication order needs ``medication:prescribe`` too."""

    code = "medication_prescribe_required"
    title = "Signing a medication order needs prescribing rights"
