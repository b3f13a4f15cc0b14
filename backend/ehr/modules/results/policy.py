"""A tenant's result policy (PostgreSQL ``result_policies``, migration 0008): critical-value
overrides, the escalation delay of unacknowledged critical results and the patient-portal
release delay. No row: the shipped table, 60 minutes, no delay.

Why 60 minutes: The Joint Commission's National Patient Safety Goal NPSG.02.03.01 asks each
organisation to define and measure the timeliness of reporting critical results; 30 to 60
minutes is the span most laboratories' policies state. Why no portal delay by default: the
21st Century Cures Act's information-blocking rule (45 CFR 171) makes a blanket delay of a
patient's own results the exception, not the rule; a tenant that has a lawful reason sets one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import ResultPolicy
from ehr.modules.results.codes import check_loinc
from ehr.modules.results.critical import (
    TENANT_SOURCE,
    CriticalLimit,
    CriticalTable,
    shipped_limits,
    shipped_sources,
)
from ehr.modules.results.schemas import CriticalLimitOut, ResultPolicyIn, ResultPolicyOut
from ehr.modules.results.units import UnitNotAllowed, check_unit, same_dimension

__all__ = [
    "DEFAULT_ESCALATION_MINUTES",
    "TenantResultPolicy",
    "check_overrides",
    "load_result_policy",
    "policy_audit_details",
    "save_result_policy",
]

DEFAULT_ESCALATION_MINUTES: Final = 60


@dataclass(frozen=True, slots=True)
class TenantResultPolicy:
    """The policy a tenant's results run under (``updated_*`` None for the default)."""

    escalation_minutes: int = DEFAULT_ESCALATION_MINUTES
    patient_release_hours: int = 0
    overrides: Mapping[str, CriticalLimit] = field(default_factory=dict)
    is_default: bool = True
    updated_by: str | None = None
    updated_at: dt.datetime | None = None

    @property
    def table(self) -> CriticalTable:
        return CriticalTable(self.overrides)

    @property
    def escalation(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.escalation_minutes)

    @property
    def release_delay(self) -> dt.timedelta:
        return dt.timedelta(hours=self.patient_release_hours)

    def to_out(self) -> ResultPolicyOut:
        return ResultPolicyOut(
            escalation_minutes=self.escalation_minutes,
            patient_release_hours=self.patient_release_hours,
            critical_overrides=[_limit_out(self.overrides[c]) for c in sorted(self.overrides)],
            critical_values=[_limit_out(row) for row in self.table.rows()],
            is_default=self.is_default,
            updated_by=self.updated_by,
            updated_at=self.updated_at,
        )


def _limit_out(limit: CriticalLimit) -> CriticalLimitOut:
    sources = shipped_sources()
    citation = "; ".join(
        sources[key.strip()] for key in limit.source.split(",") if key.strip() in sources
    )
    return CriticalLimitOut(
        loinc=limit.loinc,
        display=limit.display,
        unit=limit.unit,
        low=limit.low,
        high=limit.high,
        source=limit.source,
        citation=citation or None,
    )


def _overrides_of(raw: Mapping[str, Any]) -> dict[str, CriticalLimit]:
    out: dict[str, CriticalLimit] = {}
    for code, row in raw.items():
        if not isinstance(row, Mapping) or not isinstance(row.get("unit"), str):
            continue
        shipped = shipped_limits().get(str(code))
        out[str(code)] = CriticalLimit(
            loinc=str(code),
            unit=str(row["unit"]),
            low=float(row["low"]) if isinstance(row.get("low"), int | float) else None,
            high=float(row["high"]) if isinstance(row.get("high"), int | float) else None,
            display=shipped.display if shipped is not None else None,
            source=TENANT_SOURCE,
        )
    return out


def _policy_of(row: ResultPolicy) -> TenantResultPolicy:
    return TenantResultPolicy(
        escalation_minutes=row.escalation_minutes,
        patient_release_hours=row.patient_release_hours,
        overrides=_overrides_of(row.critical_overrides or {}),
        is_default=False,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def load_result_policy(session: AsyncSession, tenant_id: uuid.UUID) -> TenantResultPolicy:
    """The tenant's saved policy, or the default."""
    row = await session.scalar(select(ResultPolicy).where(ResultPolicy.tenant_id == tenant_id))
    return TenantResultPolicy() if row is None else _policy_of(row)


def check_overrides(payload: ResultPolicyIn) -> dict[str, dict[str, Any]]:
    """The overrides as stored, after their checks: LOINC check digit, UCUM unit, the shipped
    row's dimension (``mg/dL`` cannot override a limit in ``mmol/L``), one row per code."""
    stored: dict[str, dict[str, Any]] = {}
    for index, limit in enumerate(payload.critical_overrides):
        field_name = f"critical_overrides[{index}]"
        check_loinc(limit.loinc, field=f"{field_name}.loinc")
        check_unit(limit.unit, field=f"{field_name}.unit")
        shipped = shipped_limits().get(limit.loinc)
        if shipped is not None and not same_dimension(limit.unit, shipped.unit):
            raise UnitNotAllowed(
                f"{limit.unit!r} is not a unit of {limit.loinc} (for example {shipped.unit!r})",
                extra={"field": f"{field_name}.unit", "expected_unit": shipped.unit},
            )
        if limit.loinc in stored:
            raise UnitNotAllowed(
                f"{limit.loinc} is overridden twice", extra={"field": f"{field_name}.loinc"}
            )
        stored[limit.loinc] = {"unit": limit.unit, "low": limit.low, "high": limit.high}
    return stored


async def save_result_policy(
    session: AsyncSession, tenant_id: uuid.UUID, payload: ResultPolicyIn, *, updated_by: str
) -> TenantResultPolicy:
    """Check and store (upsert) the tenant's policy; flushes only (the request commits)."""
    overrides = check_overrides(payload)
    values = {
        "escalation_minutes": payload.escalation_minutes,
        "patient_release_hours": payload.patient_release_hours,
        "critical_overrides": overrides,
        "updated_by": updated_by,
        "updated_at": func.now(),
    }
    statement = (
        pg_insert(ResultPolicy)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[ResultPolicy.tenant_id], set_=values)
        .returning(ResultPolicy)
        .execution_options(populate_existing=True)
    )
    row = (await session.scalars(statement)).one()
    return _policy_of(row)


def policy_audit_details(before: TenantResultPolicy, after: TenantResultPolicy) -> dict[str, Any]:
    """What the security event of a policy change carries (codes and numbers only)."""

    def facts(policy: TenantResultPolicy) -> dict[str, Any]:
        return {
            "default": policy.is_default,
            "escalation_minutes": policy.escalation_minutes,
            "patient_release_hours": policy.patient_release_hours,
            "critical_overrides": {
                code: {"unit": row.unit, "low": row.low, "high": row.high}
                for code, row in sorted(policy.overrides.items())
            },
        }

    return {**facts(after), "previous": facts(before)}
