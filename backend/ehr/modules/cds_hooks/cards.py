"""A card as issued by one of our services: the spec object plus what we track about it.

``rule_id`` names the rule or care gap that produced the card (the Prometheus label for alert
fatigue and the ``rule_id`` stored with feedback). ``fingerprint`` identifies what the card is
about, stably across calls (the draft order and the issue), so order-sign can leave out what
order-select already showed for the same draft.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Final

from ehr.modules.cds_hooks.schemas import Card

__all__ = ["CARE_GAP_TOPIC_SYSTEM", "IssuedCard", "fingerprint_of", "new_card_uuid"]

# Topic system of our care-gap and reminder cards (the topic code is the gap id).
CARE_GAP_TOPIC_SYSTEM: Final = "urn:ehr:cds:care-gap"


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card: Card
    rule_id: str
    fingerprint: str


def fingerprint_of(*parts: str) -> str:
    """A short stable digest of ``parts`` (ids and codes, never free text)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:32]


def new_card_uuid() -> str:
    return str(uuid.uuid4())
