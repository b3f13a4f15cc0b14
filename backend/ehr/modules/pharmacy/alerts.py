"""Near-expiry alerts (ADR 0034): the daily ``pharmacy.expiry_alerts`` job.

Every lot with stock somewhere, not recalled, expiring within ``EHR_PHARMACY__NEAR_EXPIRY_DAYS``
raises ``medication.lot_near_expiry`` once (the event id is derived from the lot: a lot is
reported once however many days it stays near expiry). Low stock is raised by the movement that
takes a location below the product's reorder level (``medication.stock_low``, ``inventory``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import get_settings
from ehr.core.db.models import PharmacyLot, PharmacyProduct, PharmacyStock, Tenant
from ehr.platform import events, jobs

__all__ = ["EXPIRY_ALERTS", "raise_expiry_alerts"]

_NAMESPACE: Final = uuid.UUID("6f1d7c2e-3b8a-4f0e-9c51-2d4e8a7b9c10")


async def raise_expiry_alerts(
    sessions: async_sessionmaker[AsyncSession], days: int, *, now: datetime | None = None
) -> int:
    """Emit the alerts due; how many were new."""
    today = (now or datetime.now(UTC)).date()
    horizon = today + timedelta(days=days)
    added = 0
    async with sessions() as session, session.begin():
        rows = await session.execute(
            sa.select(PharmacyLot, PharmacyProduct, Tenant.slug)
            .join(PharmacyProduct, PharmacyProduct.id == PharmacyLot.product_id)
            .join(Tenant, Tenant.id == PharmacyLot.tenant_id)
            .where(
                PharmacyLot.recalled_at.is_(None),
                PharmacyLot.expires_on <= horizon,
                sa.exists().where(
                    PharmacyStock.lot_id == PharmacyLot.id, PharmacyStock.quantity > 0
                ),
            )
            .order_by(PharmacyLot.expires_on)
        )
        for lot, product, slug in rows.all():
            event = events.new_event(
                "medication.lot_near_expiry",
                tenant=slug,
                data={
                    "lot": str(lot.id),
                    "product": str(product.id),
                    "ndc": product.ndc11,
                    "expires_on": lot.expires_on.isoformat(),
                    "expired": lot.expires_on < today,
                },
            ).model_copy(update={"id": uuid.uuid5(_NAMESPACE, f"{lot.id}:{lot.expires_on}")})
            added += int(await events.emit_once(session, event))
    return added


async def _job(run: jobs.JobRun) -> Mapping[str, Any] | None:
    days = get_settings().pharmacy.near_expiry_days
    return {"alerts": await raise_expiry_alerts(run.sessionmaker, days)}


EXPIRY_ALERTS: Final = jobs.define(
    "pharmacy.expiry_alerts",
    _job,
    cron="23 4 * * *",
    max_attempts=3,
    description="Raise medication.lot_near_expiry for lots expiring within "
    "EHR_PHARMACY__NEAR_EXPIRY_DAYS (daily).",
)
