"""A tenant's order policy (table ``order_policies``): the duplicate-order windows per kind and
whether a duplicate interrupts the sign. No row = :data:`DEFAULT_POLICY`.

Defaults: a lab test or an imaging study repeating one of the patient's orders of the last
24 hours, a referral to the same specialty within 30 days; a duplicate interrupts (the signer
confirms a repeat with a reason). 0 hours turns a kind's check off. Medication duplicates are
the medication-safety engine's (duplicate therapy), under its own display policy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import OrderPolicy as OrderPolicyRow
from ehr.modules.orders.schemas import OrderPolicy, OrderPolicyUpdate

__all__ = ["DEFAULT_POLICY", "duplicate_window", "load_order_policy", "save_order_policy"]

DEFAULT_POLICY: Final = OrderPolicy(
    lab_duplicate_window_hours=24,
    imaging_duplicate_window_hours=24,
    referral_duplicate_window_hours=24 * 30,
    duplicate_display="interruptive",
    is_default=True,
)


def duplicate_window(policy: OrderPolicy, kind: str) -> dt.timedelta | None:
    """How far back a same-code order is a duplicate for ``kind`` (None: not checked)."""
    hours = {
        "lab": policy.lab_duplicate_window_hours,
        "imaging": policy.imaging_duplicate_window_hours,
        "referral": policy.referral_duplicate_window_hours,
    }.get(kind, 0)
    return dt.timedelta(hours=hours) if hours > 0 else None


def _shown(row: OrderPolicyRow) -> OrderPolicy:
    return OrderPolicy(
        lab_duplicate_window_hours=row.lab_duplicate_window_hours,
        imaging_duplicate_window_hours=row.imaging_duplicate_window_hours,
        referral_duplicate_window_hours=row.referral_duplicate_window_hours,
        duplicate_display="passive" if row.duplicate_display == "passive" else "interruptive",
    )


async def load_order_policy(session: AsyncSession, tenant_id: uuid.UUID) -> OrderPolicy:
    """The tenant's policy, or the default."""
    row = (
        await session.execute(select(OrderPolicyRow).where(OrderPolicyRow.tenant_id == tenant_id))
    ).scalar_one_or_none()
    return _shown(row) if row is not None else DEFAULT_POLICY


async def save_order_policy(
    session: AsyncSession, tenant_id: uuid.UUID, payload: OrderPolicyUpdate, *, actor: str
) -> OrderPolicy:
    """Replace the tenant's policy (one upsert; the request's transaction commits it)."""
    values = {
        "lab_duplicate_window_hours": payload.lab_duplicate_window_hours,
        "imaging_duplicate_window_hours": payload.imaging_duplicate_window_hours,
        "referral_duplicate_window_hours": payload.referral_duplicate_window_hours,
        "duplicate_display": payload.duplicate_display,
        "updated_by": actor,
    }
    await session.execute(
        insert(OrderPolicyRow)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, **values)
        .on_conflict_do_update(
            index_elements=[OrderPolicyRow.tenant_id],
            set_={**values, "updated_at": func.now()},
        )
    )
    return OrderPolicy(**{k: v for k, v in values.items() if k != "updated_by"})
