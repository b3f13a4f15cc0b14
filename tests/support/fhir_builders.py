"""Synthetic FHIR resources and CDS Hooks calls shared by the integration tests.

    rxnorm("855332")                                      a CodeableConcept of one RxNorm code
    medication_request("p1", "855332", id="w1")           an active order for Patient/p1
    order_sign("p1", [draft], prefetch={...})             an order-sign call with its drafts

Every builder takes ``**overrides`` (members replaced or added as given), so a test states only
what it is about. Codes are RxNorm's (``RXNORM``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "RXNORM",
    "collection",
    "medication_request",
    "order_sign",
    "rxnorm",
    "searchset",
]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def rxnorm(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": code}]}


def medication_request(patient_id: str, code: str, **overrides: Any) -> dict[str, Any]:
    """An active order (``intent: order``) of the RxNorm ``code`` for ``Patient/patient_id``."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": rxnorm(code),
        **overrides,
    }


def collection(resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources`` (as a CDS call's ``draftOrders``)."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": dict(r)} for r in resources],
    }


def searchset(resources: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``searchset`` Bundle of ``resources`` (as a prefetched search)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": dict(r)} for r in resources],
    }


def order_sign(
    patient_id: str,
    drafts: Iterable[Mapping[str, Any]],
    *,
    user_id: str = "Practitioner/1",
    **overrides: Any,
) -> dict[str, Any]:
    """An ``order-sign`` call (fresh ``hookInstance``) signing ``drafts`` for ``patient_id``."""
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": user_id,
            "patientId": patient_id,
            "draftOrders": collection(drafts),
        },
        **overrides,
    }
