"""Cards about the data a call was decided on, not about the patient: the record missing, read
incompletely, restricted records not checked, more findings than a response carries.

Data cards (rule ids ``data:...``) are repeated on every call (order-sign never leaves them out).
"""

from __future__ import annotations

from typing import Final

import structlog

from ehr.modules.cds_hooks.cards import (
    CARE_GAP_TOPIC_SYSTEM,
    IssuedCard,
    fingerprint_of,
    new_card_uuid,
)
from ehr.modules.cds_hooks.schemas import MAX_CARDS, Card, Coding, Source

__all__ = [
    "DATA_CARD_PREFIX",
    "capped_cards",
    "incomplete_card",
    "is_data_card",
    "record_missing_card",
    "restricted_card",
]

logger = structlog.get_logger(__name__)

DATA_CARD_PREFIX: Final = "data:"


def is_data_card(card: IssuedCard) -> bool:
    """Cards about the data itself (record missing, incomplete): repeated on every call."""
    return card.rule_id.startswith(DATA_CARD_PREFIX)


def _source_card(summary: str, detail: str, code: str, display: str) -> IssuedCard:
    card = Card(
        uuid=new_card_uuid(),
        summary=summary,
        indicator="info",
        detail=detail,
        source=Source(
            label="EHR clinical decision support",
            topic=Coding(system=CARE_GAP_TOPIC_SYSTEM, code=code, display=display),
        ),
    )
    return IssuedCard(card=card, rule_id=code, fingerprint=fingerprint_of(code, summary))


def record_missing_card(patient_id: str) -> IssuedCard:
    return _source_card(
        "No record found for this patient: decision support is limited",
        (
            f"The FHIR server has no Patient/{patient_id} for this service, so medications, "
            "allergies and results on record could not be checked. Only what this request "
            "carried (e.g. the draft orders) was checked."
        ),
        "data:patient-not-found",
        "Patient record not found",
    )


def restricted_card() -> IssuedCard:
    return _source_card(
        "Some restricted records were not checked",
        (
            "Records marked restricted (confidentiality R or V) are not read by decision "
            "support. Open the chart with emergency access (break-glass) to check against them."
        ),
        "data:restricted-not-checked",
        "Restricted records not checked",
    )


def incomplete_card() -> IssuedCard:
    return _source_card(
        "Part of the record was not checked (too much data or a source failed)",
        (
            "A search returned more pages than decision support reads, or a prefetch page could "
            "not be followed. Cards reflect the data that was read."
        ),
        "data:incomplete",
        "Record read incompletely",
    )


_INDICATOR_RANK: Final = {"critical": 0, "warning": 1, "info": 2}


def capped_cards(
    issued: list[IssuedCard], *, omitted: int = 0, limit: int = MAX_CARDS
) -> list[IssuedCard]:
    """At most ``limit`` cards: the most severe first; what was left out (``omitted`` findings
    never rendered, plus cards over the limit) is counted on one summary card."""
    if len(issued) <= limit and not omitted:
        return issued
    ranked = sorted(issued, key=lambda i: _INDICATOR_RANK.get(i.card.indicator, 3))
    kept = ranked[: limit - 1]
    left_out = len(issued) - len(kept) + omitted
    logger.info("cds_hooks.cards.capped", cards=len(issued) + omitted, omitted=left_out)
    return [
        *kept,
        _source_card(
            f"{left_out} more findings not shown",
            (
                f"This call produced {len(kept) + left_out} findings; the {len(kept)} most "
                "severe are shown. Review the orders with the medication-safety check for the "
                "full list."
            ),
            "data:cards-capped",
            "More findings than shown",
        ),
    ]
