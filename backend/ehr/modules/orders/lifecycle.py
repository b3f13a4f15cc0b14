"""The order lifecycle: which transitions exist, from which statuses, and what each writes
(pure functions; the service reads, checks and writes them in one FHIR transaction).

::

    draft ──sign──▶ active ──complete──▶ completed
      │              │  ▲
      │            hold│  │resume
      │              ▼  │
      │            on-hold
      └──revoke (with a reason) from draft, active or on-hold ──▶ revoked
    entered-in-error from any status but entered-in-error

FHIR's request-status codes are the API's statuses; a MedicationRequest, whose value set has no
``revoked``, takes ``cancelled`` when a draft is withdrawn and ``stopped`` when a signed order is
(R4: ``cancelled`` = before any administration, ``stopped`` = halted after some may have
occurred), and both read back as ``revoked``. A transition from a status the table does not
list is 409 ``order_transition_not_allowed`` (with ``order_status`` and the statuses the step is
allowed from). The reason of a transition goes in ``statusReason`` (MedicationRequest) or the
R5 cross-version extension ``ServiceRequest.statusReason`` (R4 has none), and in the
transition's Provenance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal

from ehr.modules.orders.errors import OrderReasonRequired, OrderTransitionNotAllowed
from ehr.modules.orders.schemas import OrderStatus

__all__ = [
    "ACTIVITY_SYSTEM",
    "DATA_OPERATION",
    "SERVICE_REQUEST_STATUS_REASON",
    "TRANSITIONS",
    "Action",
    "api_status",
    "check_transition",
    "fhir_status",
    "fhir_statuses",
    "transition_provenance",
    "transitioned",
]

Action = Literal["sign", "hold", "resume", "revoke", "complete", "entered-in-error"]

# action -> (the statuses it starts from, the status it leads to)
TRANSITIONS: Final[Mapping[str, tuple[frozenset[str], str]]] = {
    "sign": (frozenset({"draft"}), "active"),
    "hold": (frozenset({"active"}), "on-hold"),
    "resume": (frozenset({"on-hold"}), "active"),
    "revoke": (frozenset({"draft", "active", "on-hold"}), "revoked"),
    "complete": (frozenset({"active"}), "completed"),
    "entered-in-error": (
        frozenset({"draft", "active", "on-hold", "completed", "revoked"}),
        "entered-in-error",
    ),
}

DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
ACTIVITY_SYSTEM: Final = "urn:ehr:order-activity"
PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE: Final = "urn:iso-astm:E1762-95:2013"
SERVICE_REQUEST_STATUS_REASON: Final = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ServiceRequest.statusReason"
)
_MEDICATION_REVOKED: Final = frozenset({"cancelled", "stopped"})
_KNOWN: Final = frozenset(
    {"draft", "active", "on-hold", "completed", "revoked", "entered-in-error"}
)


def api_status(resource: Mapping[str, Any]) -> OrderStatus | None:
    """The order's status in the API's words (None: a status we do not use, e.g. unknown)."""
    status = resource.get("status")
    if resource.get("resourceType") == "MedicationRequest" and status in _MEDICATION_REVOKED:
        return "revoked"
    if status in _KNOWN:
        return status  # type: ignore[no-any-return]
    return None


def fhir_statuses(resource_type: str, status: str) -> list[str]:
    """The FHIR status codes an API status is stored as (for searches)."""
    if resource_type == "MedicationRequest" and status == "revoked":
        return sorted(_MEDICATION_REVOKED)
    return [status]


def fhir_status(resource_type: str, target: str, current: str) -> str:
    """The FHIR status a transition from ``current`` to ``target`` writes."""
    if resource_type == "MedicationRequest" and target == "revoked":
        return "cancelled" if current == "draft" else "stopped"
    return target


def check_transition(resource: Mapping[str, Any], action: Action, reason: str | None) -> str:
    """The API status ``action`` leads to, or the refusal (409 / 422 reason required)."""
    starts, target = TRANSITIONS[action]
    current = api_status(resource)
    if current not in starts:
        raise OrderTransitionNotAllowed(
            f"An order that is {current or resource.get('status')!s} cannot be {_done(action)}.",
            extra={
                "order_status": current or resource.get("status"),
                "action": action,
                "allowed_from": sorted(starts),
            },
        )
    if action == "revoke" and not reason:
        raise OrderReasonRequired("Revoking an order needs a reason.")
    return target


def _done(action: str) -> str:
    return {
        "sign": "signed",
        "hold": "put on hold",
        "resume": "resumed",
        "revoke": "revoked",
        "complete": "completed",
        "entered-in-error": "marked entered-in-error",
    }[action]


def transitioned(
    resource: Mapping[str, Any],
    action: Action,
    *,
    reason: str | None,
    actor: Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """``resource`` after ``action`` (checked with :func:`check_transition`)."""
    target = check_transition(resource, action, reason)
    current = api_status(resource) or ""
    kind = str(resource.get("resourceType"))
    updated = dict(resource)
    updated["status"] = fhir_status(kind, target, current)
    if action == "sign":
        drafter = updated.get("requester")
        updated["authoredOn"] = now.isoformat(timespec="seconds")
        updated["requester"] = dict(actor)
        if kind == "MedicationRequest" and isinstance(drafter, Mapping) and drafter != actor:
            updated["recorder"] = dict(drafter)
    if reason:
        concept = {"text": reason}
        if kind == "MedicationRequest":
            updated["statusReason"] = concept
        else:
            extensions = [
                e
                for e in updated.get("extension") or []
                if not (isinstance(e, Mapping) and e.get("url") == SERVICE_REQUEST_STATUS_REASON)
            ]
            updated["extension"] = [
                *extensions,
                {"url": SERVICE_REQUEST_STATUS_REASON, "valueCodeableConcept": concept},
            ]
    return updated


def transition_provenance(
    action: Action,
    target: str,
    actor: Mapping[str, Any],
    now: dt.datetime,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """The Provenance of one transition of the order at ``target`` (``Type/id``): activity
    v3-DataOperation UPDATE and ``urn:ehr:order-activity|<action>``; a sign also carries an
    author's signature record (type, when, who; no signature data)."""
    when = now.isoformat(timespec="seconds")
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": when,
        "activity": {
            "coding": [
                {"system": DATA_OPERATION, "code": "UPDATE"},
                {"system": ACTIVITY_SYSTEM, "code": action},
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": PARTICIPANT_TYPE,
                            "code": "author" if action == "sign" else "performer",
                        }
                    ]
                },
                "who": dict(actor),
            }
        ],
    }
    if reason:
        provenance["reason"] = [{"text": reason}]
    if action == "sign":
        provenance["signature"] = [
            {
                "type": [
                    {
                        "system": SIGNATURE_TYPE,
                        "code": "1.2.840.10065.1.12.1.1",
                        "display": "Author's Signature",
                    }
                ],
                "when": when,
                "who": dict(actor),
            }
        ]
    return provenance
