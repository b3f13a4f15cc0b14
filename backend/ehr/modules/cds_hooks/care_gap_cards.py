"""Care-gap and result reminders as cards (the ``patient-view`` and ``encounter-start`` services).

The reminders come from :mod:`ehr.modules.care_gaps` (what is due, read from the chart); this
module renders one CDS Hooks card per reminder: the summary (clipped to the spec's length), the
detail, a topic ``urn:ehr:cds:care-gap|<rule id>``, links to the guideline and, for a gap with an
order, one suggestion creating a draft ServiceRequest (``intent=proposal``).

``patient-view``: gaps and result cards; ``encounter-start``: the gaps to close at this visit
(immunizations, screenings, monitoring), no result cards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from ehr.modules.care_gaps import (
    CODE_SYSTEM_URIS,
    CareGapChart,
    CareGapKnowledge,
    Reminder,
    SuggestedOrder,
    find_reminders,
)
from ehr.modules.cds_hooks.cards import (
    CARE_GAP_TOPIC_SYSTEM,
    IssuedCard,
    fingerprint_of,
    new_card_uuid,
)
from ehr.modules.cds_hooks.schemas import (
    SUMMARY_MAX_CHARS,
    Action,
    Card,
    Coding,
    Link,
    Source,
    Suggestion,
)

__all__ = ["SOURCE_LABEL", "Hook", "care_gap_cards"]

Hook = Literal["patient-view", "encounter-start"]

SOURCE_LABEL: Final = "EHR care gaps"


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX_CHARS else text[: SUMMARY_MAX_CHARS - 1] + "…"


def _suggestion(order: SuggestedOrder, patient_id: str) -> Suggestion:
    code = order.code
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {
            "coding": [
                {
                    "system": CODE_SYSTEM_URIS[code.system],
                    "code": code.code,
                    "display": code.display,
                }
            ],
            "text": code.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    return Suggestion(
        label=order.label,
        uuid=new_card_uuid(),
        is_recommended=True,
        actions=[
            Action(
                type="create",
                description=f"Draft order (proposal): {code.display}",
                resource=service_request,
            )
        ],
    )


def _card(reminder: Reminder) -> IssuedCard:
    order = reminder.order
    suggestions = None if order is None else [_suggestion(order, reminder.patient_id)]
    card = Card(
        uuid=new_card_uuid(),
        summary=_clip(reminder.summary),
        detail=reminder.detail,
        indicator=reminder.indicator,
        source=Source(
            label=SOURCE_LABEL,
            url=reminder.citations[0].url,
            topic=Coding(
                system=CARE_GAP_TOPIC_SYSTEM, code=reminder.rule_id, display=reminder.title
            ),
        ),
        suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        links=[
            Link(label=citation.label, url=citation.url, type="absolute")
            for citation in reminder.citations
        ],
    )
    return IssuedCard(
        card=card,
        rule_id=reminder.rule_id,
        fingerprint=fingerprint_of(reminder.patient_id, reminder.rule_id),
    )


def care_gap_cards(
    chart: CareGapChart,
    *,
    today: dt.date,
    hook: Hook,
    knowledge: CareGapKnowledge | None = None,
) -> list[IssuedCard]:
    """Open care gaps (and, for ``patient-view``, out-of-range results) as cards.

    Ordered critical, warning, info, then by rule id. Raises ``ValueError`` when the chart's
    Patient has no id (the draft orders and fingerprints need it).
    """
    if hook not in ("patient-view", "encounter-start"):
        raise ValueError(f"unsupported hook {hook!r}")
    reminders = find_reminders(
        chart, today=today, include_results=hook == "patient-view", knowledge=knowledge
    )
    return [_card(reminder) for reminder in reminders]
