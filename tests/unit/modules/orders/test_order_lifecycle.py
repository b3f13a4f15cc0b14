"""The order lifecycle: only the allowed transitions, FHIR's status codes, what each writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ehr.modules.orders.errors import OrderReasonRequired, OrderTransitionNotAllowed
from ehr.modules.orders.lifecycle import (
    SERVICE_REQUEST_STATUS_REASON,
    TRANSITIONS,
    api_status,
    check_transition,
    transition_provenance,
    transitioned,
)

NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
SIGNER = {"identifier": {"system": "urn:ehr:user", "value": "u-2"}, "display": "dr.two"}
DRAFTER = {"identifier": {"system": "urn:ehr:user", "value": "u-1"}, "display": "nurse.one"}


def _order(resource_type: str = "ServiceRequest", status: str = "draft") -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "id": "o1",
        "status": status,
        "intent": "order",
        "requester": DRAFTER,
    }


ALLOWED = {(start, action) for action, (starts, _) in TRANSITIONS.items() for start in starts}
STATUSES = ("draft", "active", "on-hold", "completed", "revoked", "entered-in-error")


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_only_the_lifecycle_transitions_are_allowed(start: str, action: Any) -> None:
    order = _order(status=start)
    if (start, action) in ALLOWED:
        assert check_transition(order, action, "why") == TRANSITIONS[action][1]
    else:
        with pytest.raises(OrderTransitionNotAllowed) as raised:
            check_transition(order, action, "why")
        assert raised.value.status_code == 409
        assert raised.value.code == "order_transition_not_allowed"
        assert raised.value.extra["order_status"] == start


def test_the_lifecycle_is_the_documented_one() -> None:
    assert ("draft", "sign") in ALLOWED
    assert ("active", "complete") in ALLOWED
    assert ("active", "hold") in ALLOWED
    assert ("on-hold", "resume") in ALLOWED
    assert ("completed", "revoke") not in ALLOWED
    assert ("draft", "complete") not in ALLOWED
    assert ("entered-in-error", "entered-in-error") not in ALLOWED


def test_revoking_needs_a_reason() -> None:
    with pytest.raises(OrderReasonRequired) as raised:
        check_transition(_order(status="active"), "revoke", None)
    assert raised.value.code == "order_reason_required"


def test_signing_makes_the_signer_the_requester_and_stamps_the_time() -> None:
    signed = transitioned(_order("MedicationRequest"), "sign", reason=None, actor=SIGNER, now=NOW)
    assert signed["status"] == "active"
    assert signed["requester"] == SIGNER
    assert signed["recorder"] == DRAFTER
    assert signed["authoredOn"] == "2026-12-07T09:30:00+00:00"


def test_a_medication_order_is_cancelled_as_a_draft_and_stopped_once_signed() -> None:
    cancelled = transitioned(
        _order("MedicationRequest"), "revoke", reason="duplicate", actor=SIGNER, now=NOW
    )
    stopped = transitioned(
        _order("MedicationRequest", "active"), "revoke", reason="bleeding", actor=SIGNER, now=NOW
    )
    assert (cancelled["status"], stopped["status"]) == ("cancelled", "stopped")
    assert api_status(cancelled) == api_status(stopped) == "revoked"
    assert stopped["statusReason"] == {"text": "bleeding"}


def test_a_service_request_keeps_its_reason_in_the_status_reason_extension() -> None:
    revoked = transitioned(
        _order(status="active"), "revoke", reason="wrong test", actor=SIGNER, now=NOW
    )
    assert revoked["status"] == "revoked"
    assert revoked["extension"] == [
        {"url": SERVICE_REQUEST_STATUS_REASON, "valueCodeableConcept": {"text": "wrong test"}}
    ]


def test_the_sign_provenance_names_target_agent_activity_and_signature() -> None:
    provenance = transition_provenance("sign", "ServiceRequest/o1", SIGNER, NOW, reason="ok")
    assert provenance["target"] == [{"reference": "ServiceRequest/o1"}]
    assert provenance["agent"][0]["who"] == SIGNER
    codes = {c["code"] for c in provenance["activity"]["coding"]}
    assert codes == {"UPDATE", "sign"}
    assert provenance["signature"][0]["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    assert provenance["reason"] == [{"text": "ok"}]
    hold = transition_provenance("hold", "ServiceRequest/o1", SIGNER, NOW)
    assert "signature" not in hold
