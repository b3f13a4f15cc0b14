"""A tenant's display policy: loaded, validated and saved (PostgreSQL), and audited on change.

The rule itself (how a policy changes an issue's display) is :class:`~.issues.Policy`; a tenant
without a saved policy runs under the default (``Policy()``: the knowledge base's displays).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import MedicationSafetyPolicy
from ehr.core.errors import RequestValidationFailed
from ehr.modules.medication_safety.issues import BUILTIN_RULE_OUTCOMES, Policy
from ehr.modules.medication_safety.knowledge import (
    SEVERITY_RANK,
    Display,
    KnowledgeBase,
    Severity,
)
from ehr.modules.medication_safety.schemas import PolicyIn, PolicyOut

__all__ = [
    "TenantPolicy",
    "default_policy",
    "known_rule_ids",
    "load_policy",
    "policy_audit_details",
    "save_policy",
]

_DISPLAYS: Final = frozenset(d.value for d in Display)


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """The policy a tenant's checks run under; ``updated_*`` are None for the default."""

    policy: Policy
    is_default: bool = True
    updated_by: str | None = None
    updated_at: dt.datetime | None = None

    def to_out(self) -> PolicyOut:
        return PolicyOut(
            interruptive_severities=sorted(self.policy.interruptive, key=SEVERITY_RANK.__getitem__),
            rule_display=dict(sorted(self.policy.rule_display.items())),
            is_default=self.is_default,
            updated_by=self.updated_by,
            updated_at=self.updated_at,
        )


def default_policy() -> TenantPolicy:
    return TenantPolicy(Policy())


def _policy_of(row: MedicationSafetyPolicy) -> TenantPolicy:
    severities = frozenset(Severity(s) for s in row.interruptive_severities)
    displays = {
        str(rule): Display(value)
        for rule, value in (row.rule_display or {}).items()
        if value in _DISPLAYS
    }
    return TenantPolicy(
        Policy(interruptive=severities, rule_display=MappingProxyType(displays)),
        is_default=False,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def load_policy(session: AsyncSession, tenant_id: uuid.UUID) -> TenantPolicy:
    """The tenant's saved policy, or the default (``Policy()``) when it has none."""
    row = await session.scalar(
        select(MedicationSafetyPolicy).where(MedicationSafetyPolicy.tenant_id == tenant_id)
    )
    return default_policy() if row is None else _policy_of(row)


def known_rule_ids(kb: KnowledgeBase) -> frozenset[str]:
    """Every rule id an issue can carry with this knowledge base."""
    return frozenset(
        {
            *kb.interactions,
            *kb.cross_sensitivities,
            *(dup.rule_id for dup in kb.duplicate_classes.values()),
            *BUILTIN_RULE_OUTCOMES,
        }
    )


async def save_policy(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payload: PolicyIn,
    *,
    kb: KnowledgeBase,
    updated_by: str,
) -> TenantPolicy:
    """Validate ``payload`` against ``kb`` (unknown rule id → 422) and store it (upsert).

    Flushes only: the request owns the transaction.
    """
    unknown = sorted(set(payload.rule_display) - known_rule_ids(kb))
    if unknown:
        raise RequestValidationFailed(
            f"Unknown rule id(s) in rule_display: {', '.join(unknown[:20])}",
            extra={"unknown_rule_ids": unknown},
        )
    severities = sorted({s.value for s in payload.interruptive_severities})
    displays = {rule: display.value for rule, display in sorted(payload.rule_display.items())}
    values = {
        "interruptive_severities": severities,
        "rule_display": displays,
        "updated_by": updated_by,
        "updated_at": func.now(),
    }
    statement = (
        pg_insert(MedicationSafetyPolicy)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[MedicationSafetyPolicy.tenant_id], set_=values)
        .returning(MedicationSafetyPolicy)
        .execution_options(populate_existing=True)
    )
    row = (await session.scalars(statement)).one()
    return _policy_of(row)


def policy_audit_details(before: TenantPolicy, after: TenantPolicy) -> dict[str, Any]:
    """What a policy change recorded on the audit trail carries (codes only)."""
    return {
        "interruptive_severities": [s.value for s in after.to_out().interruptive_severities],
        "rule_display": {k: v.value for k, v in after.to_out().rule_display.items()},
        "previous": {
            "default": before.is_default,
            "interruptive_severities": [s.value for s in before.to_out().interruptive_severities],
            "rule_display": {k: v.value for k, v in before.to_out().rule_display.items()},
        },
    }
