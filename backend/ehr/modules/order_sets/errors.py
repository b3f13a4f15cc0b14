"""The refusals of the order-sets API: each a stable ``code`` (422 bad input, 409 a state that
forbids the action). The orders module's own refusals (an unknown code, a unit) and the chart's
(``if_match_required``, ``patient_mismatch``) pass through unchanged: one rule, one code."""

# Error classes are named for what happened, without an "Error" suffix (as in ehr.core.errors).
# ruff: noqa: N818

from __future__ import annotations

from ehr.core.errors import ConflictError, RequestValidationFailed

__all__ = [
    "DuplicateMember",
    "EmptySelection",
    "OrderSetKeyTaken",
    "OrderSetMemberInvalid",
    "OrderSetNotActive",
    "OrderSetRetired",
    "OverrideChangesKind",
    "OverrideNotSelected",
    "PatientSpecificMember",
    "UnknownMember",
]


class OrderSetMemberInvalid(RequestValidationFailed):
    """A member's order (as defined, or with the caller's overrides) is not a valid order."""

    code = "order_set_member_invalid"
    title = "An order-set member is not a valid order"


class OrderSetKeyTaken(ConflictError):
    """The tenant already has an order set with this key (retired ones keep theirs)."""

    code = "order_set_key_taken"
    title = "The order-set key is taken"


class OrderSetRetired(ConflictError):
    """A retired order set is final: it is neither changed nor instantiated."""

    code = "order_set_retired"
    title = "The order set is retired"


class OrderSetNotActive(ConflictError):
    """Only an active order set is instantiated (a draft one is still being written)."""

    code = "order_set_not_active"
    title = "The order set is not active"


class PatientSpecificMember(RequestValidationFailed):
    """A definition is for any patient: its members name no patient and no encounter (those
    come from the instantiation)."""

    code = "order_set_member_patient_specific"
    title = "An order-set member names a patient or an encounter"


class DuplicateMember(RequestValidationFailed):
    """Two members of one set share a key."""

    code = "order_set_duplicate_member"
    title = "Two members share a key"


class UnknownMember(RequestValidationFailed):
    """The instantiation names a member the set does not have."""

    code = "order_set_unknown_member"
    title = "Unknown order-set member"


class EmptySelection(RequestValidationFailed):
    """Nothing would be ordered."""

    code = "order_set_empty_selection"
    title = "No member selected"


class OverrideChangesKind(RequestValidationFailed):
    """An override cannot turn a lab order into a medication order (that is another member)."""

    code = "order_set_override_changes_kind"
    title = "An override cannot change the order's kind"


class OverrideNotSelected(RequestValidationFailed):
    """An override for a member that is not being ordered (a mistake the caller should see)."""

    code = "order_set_override_not_selected"
    title = "Override for a member that is not selected"
