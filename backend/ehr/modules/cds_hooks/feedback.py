"""Card feedback (``POST /cds-services/{id}/feedback``): stored once per card, outcome and time,
attributed to the rule that produced the card (remembered in Redis by the card's uuid) and counted
per rule (alert fatigue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import CdsFeedback
from ehr.modules.cds_hooks.client_auth import CdsClientIdentity
from ehr.modules.cds_hooks.definitions import ServiceDefinition
from ehr.modules.cds_hooks.schemas import FeedbackRequest

__all__ = ["CARD_FEEDBACK", "UNKNOWN_RULE", "FeedbackOutcome", "store_feedback"]

logger = structlog.get_logger(__name__)

CARD_FEEDBACK: Final = Counter(
    "ehr_cds_card_feedback",
    "CDS Hooks card feedback received, by service, rule and outcome (accepted | overridden).",
    ["service", "rule", "outcome"],
)
UNKNOWN_RULE: Final = "unknown"


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    stored: int
    duplicates: int


async def store_feedback(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    *,
    client: CdsClientIdentity,
    definition: ServiceDefinition,
    feedback: FeedbackRequest,
) -> FeedbackOutcome:
    """Store every item (once per card, outcome and time) and count it per rule."""
    keys = [f"cds:card:{client.tenant}:{item.card}" for item in feedback.feedback]
    try:
        remembered: list[Any] = await redis.mget(keys)
    except (RedisError, OSError) as exc:
        logger.warning("cds_hooks.card_memory.unavailable", error=type(exc).__name__)
        remembered = [None] * len(keys)
    stored = 0
    async with sessionmaker() as session, session.begin():
        for item, memory in zip(feedback.feedback, remembered, strict=True):
            rule_id: str | None = None
            if memory is not None:
                text = memory.decode() if isinstance(memory, bytes) else str(memory)
                service, _, rule = text.partition("\x1f")
                rule_id = rule if service == definition.id and rule else None
            reason = item.override_reason
            statement = (
                pg_insert(CdsFeedback)
                .values(
                    tenant_id=client.tenant_id,
                    client_id=client.client_id,
                    service_id=definition.id,
                    card_uuid=item.card,
                    rule_id=rule_id,
                    outcome=item.outcome,
                    outcome_timestamp=item.outcome_timestamp,
                    accepted_suggestions=[s.id for s in item.accepted_suggestions or []],
                    override_reason=(
                        reason.reason.model_dump(by_alias=True, exclude_none=True)
                        if reason is not None and reason.reason is not None
                        else None
                    ),
                    user_comment=reason.user_comment if reason is not None else None,
                )
                .on_conflict_do_nothing()
                .returning(CdsFeedback.id)
            )
            inserted = (await session.execute(statement)).scalar_one_or_none()
            if inserted is not None:
                stored += 1
                CARD_FEEDBACK.labels(definition.id, rule_id or UNKNOWN_RULE, item.outcome).inc()
    return FeedbackOutcome(stored=stored, duplicates=len(feedback.feedback) - stored)
