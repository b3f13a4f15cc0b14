"""The controlled-substance record's reports (ADR 0034): the ledger, discrepancies found by
counts, and the inventory at a point in time (what a biennial DEA inventory is taken from)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import (
    PharmacyLedgerEntry,
    PharmacyLocation,
    PharmacyLot,
    PharmacyProduct,
)

__all__ = [
    "EXPORT_FIELDS",
    "InventoryLine",
    "discrepancies",
    "export_ledger",
    "inventory_at",
    "ledger_page",
]

EXPORT_FIELDS: Final = (
    "seq",
    "occurred_at",
    "kind",
    "location",
    "ndc11",
    "product",
    "schedule",
    "lot_number",
    "expires_on",
    "quantity",
    "balance_after",
    "counted",
    "actor",
    "witness",
    "reason",
    "reference",
    "hash",
)
_EXPORT_BATCH: Final = 2000

InventoryLine = tuple[PharmacyLedgerEntry, PharmacyProduct, PharmacyLot, PharmacyLocation]


async def ledger_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    product_id: uuid.UUID | None = None,
    lot_id: uuid.UUID | None = None,
    controlled: bool = False,
    after_seq: int = 0,
    limit: int = 100,
) -> list[PharmacyLedgerEntry]:
    """Ledger rows in chain order after ``after_seq`` (``controlled``: scheduled products)."""
    query = sa.select(PharmacyLedgerEntry).where(
        PharmacyLedgerEntry.tenant_id == tenant_id, PharmacyLedgerEntry.seq > after_seq
    )
    if product_id is not None:
        query = query.where(PharmacyLedgerEntry.product_id == product_id)
    if lot_id is not None:
        query = query.where(PharmacyLedgerEntry.lot_id == lot_id)
    if controlled:
        query = query.where(
            PharmacyLedgerEntry.product_id.in_(
                sa.select(PharmacyProduct.id).where(
                    PharmacyProduct.tenant_id == tenant_id, PharmacyProduct.schedule.is_not(None)
                )
            )
        )
    return list(await session.scalars(query.order_by(PharmacyLedgerEntry.seq).limit(limit)))


async def discrepancies(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    since: datetime | None = None,
    controlled_only: bool = True,
) -> Sequence[InventoryLine]:
    """Counts that disagreed with the ledger (the row's quantity is counted - expected)."""
    query = (
        sa.select(PharmacyLedgerEntry, PharmacyProduct, PharmacyLot, PharmacyLocation)
        .join(PharmacyProduct, PharmacyProduct.id == PharmacyLedgerEntry.product_id)
        .join(PharmacyLot, PharmacyLot.id == PharmacyLedgerEntry.lot_id)
        .join(PharmacyLocation, PharmacyLocation.id == PharmacyLedgerEntry.location_id)
        .where(
            PharmacyLedgerEntry.tenant_id == tenant_id,
            PharmacyLedgerEntry.kind == "count",
            PharmacyLedgerEntry.quantity != 0,
        )
        .order_by(PharmacyLedgerEntry.seq)
    )
    if since is not None:
        query = query.where(PharmacyLedgerEntry.occurred_at >= since)
    if controlled_only:
        query = query.where(PharmacyProduct.schedule.is_not(None))
    return [(e, p, lot, loc) for e, p, lot, loc in (await session.execute(query)).all()]


async def inventory_at(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    at: datetime,
    *,
    controlled_only: bool = True,
) -> Sequence[InventoryLine]:
    """Each (location, lot)'s balance as the ledger stood at ``at``: its last row at or before
    then (lots at zero left out)."""
    last = (
        sa.select(sa.func.max(PharmacyLedgerEntry.seq).label("seq"))
        .where(PharmacyLedgerEntry.tenant_id == tenant_id, PharmacyLedgerEntry.occurred_at <= at)
        .group_by(PharmacyLedgerEntry.location_id, PharmacyLedgerEntry.lot_id)
        .subquery()
    )
    query = (
        sa.select(PharmacyLedgerEntry, PharmacyProduct, PharmacyLot, PharmacyLocation)
        .join(last, last.c.seq == PharmacyLedgerEntry.seq)
        .join(PharmacyProduct, PharmacyProduct.id == PharmacyLedgerEntry.product_id)
        .join(PharmacyLot, PharmacyLot.id == PharmacyLedgerEntry.lot_id)
        .join(PharmacyLocation, PharmacyLocation.id == PharmacyLedgerEntry.location_id)
        .where(PharmacyLedgerEntry.tenant_id == tenant_id, PharmacyLedgerEntry.balance_after > 0)
        .order_by(PharmacyProduct.schedule, PharmacyProduct.name, PharmacyLocation.code)
    )
    if controlled_only:
        query = query.where(PharmacyProduct.schedule.is_not(None))
    return [(e, p, lot, loc) for e, p, lot, loc in (await session.execute(query)).all()]


async def export_ledger(
    session: AsyncSession, tenant_id: uuid.UUID, *, controlled: bool = True
) -> AsyncIterator[dict[str, str]]:
    """The ledger as flat rows (:data:`EXPORT_FIELDS`), in chain order, read in batches."""
    after = 0
    while True:
        query = (
            sa.select(PharmacyLedgerEntry, PharmacyProduct, PharmacyLot, PharmacyLocation)
            .join(PharmacyProduct, PharmacyProduct.id == PharmacyLedgerEntry.product_id)
            .join(PharmacyLot, PharmacyLot.id == PharmacyLedgerEntry.lot_id)
            .join(PharmacyLocation, PharmacyLocation.id == PharmacyLedgerEntry.location_id)
            .where(PharmacyLedgerEntry.tenant_id == tenant_id, PharmacyLedgerEntry.seq > after)
            .order_by(PharmacyLedgerEntry.seq)
            .limit(_EXPORT_BATCH)
        )
        if controlled:
            query = query.where(PharmacyProduct.schedule.is_not(None))
        rows = (await session.execute(query)).all()
        for entry, product, lot, location in rows:
            yield {
                "seq": str(entry.seq),
                "occurred_at": entry.occurred_at.isoformat(),
                "kind": entry.kind,
                "location": location.code,
                "ndc11": product.ndc11,
                "product": product.name,
                "schedule": product.schedule or "",
                "lot_number": lot.lot_number,
                "expires_on": lot.expires_on.isoformat(),
                "quantity": f"{entry.quantity:f}",
                "balance_after": f"{entry.balance_after:f}",
                "counted": "" if entry.counted is None else f"{entry.counted:f}",
                "actor": entry.actor,
                "witness": entry.witness or "",
                "reason": entry.reason or "",
                "reference": entry.reference or "",
                "hash": entry.hash,
            }
        if len(rows) < _EXPORT_BATCH:
            return
        after = rows[-1][0].seq
