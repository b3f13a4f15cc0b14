"""Rows of the pharmacy tables as the API's documents."""

from __future__ import annotations

from decimal import Decimal

from ehr.core.db.models import (
    PharmacyLedgerEntry,
    PharmacyLocation,
    PharmacyLot,
    PharmacyProduct,
    PharmacyStock,
)
from ehr.modules.pharmacy.schemas import (
    BalanceOut,
    DiscrepancyOut,
    InventoryLineOut,
    LedgerEntryOut,
    LocationOut,
    LotOut,
    ProductOut,
)

__all__ = [
    "balance_out",
    "discrepancy_out",
    "entry_out",
    "inventory_line_out",
    "location_out",
    "lot_out",
    "product_out",
]

_SCALE = Decimal("0.001")


def _q(value: Decimal) -> Decimal:
    return value.quantize(_SCALE)


def location_out(location: PharmacyLocation) -> LocationOut:
    return LocationOut(
        id=location.id, code=location.code, name=location.name, created_at=location.created_at
    )


def product_out(product: PharmacyProduct) -> ProductOut:
    return ProductOut.model_validate(
        {
            "id": product.id,
            "ndc11": product.ndc11,
            "rxcui": product.rxcui,
            "name": product.name,
            "unit": product.unit,
            "divisible": product.divisible,
            "schedule": product.schedule,
            "reorder_level": _q(product.reorder_level),
            "created_at": product.created_at,
        }
    )


def lot_out(lot: PharmacyLot) -> LotOut:
    return LotOut(
        id=lot.id,
        product_id=lot.product_id,
        lot_number=lot.lot_number,
        expires_on=lot.expires_on,
        recalled_at=lot.recalled_at,
    )


def entry_out(entry: PharmacyLedgerEntry) -> LedgerEntryOut:
    return LedgerEntryOut(
        id=entry.id,
        seq=entry.seq,
        kind=entry.kind,
        location_id=entry.location_id,
        product_id=entry.product_id,
        lot_id=entry.lot_id,
        quantity=_q(entry.quantity),
        balance_after=_q(entry.balance_after),
        counted=_q(entry.counted) if entry.counted is not None else None,
        actor=entry.actor,
        witness=entry.witness,
        reason=entry.reason,
        reference=entry.reference,
        occurred_at=entry.occurred_at,
        hash=entry.hash,
    )


def balance_out(stock: PharmacyStock, lot: PharmacyLot, product: PharmacyProduct) -> BalanceOut:
    return BalanceOut.model_validate(
        {
            "location_id": stock.location_id,
            "product_id": product.id,
            "ndc11": product.ndc11,
            "product": product.name,
            "unit": product.unit,
            "schedule": product.schedule,
            "lot": lot_out(lot),
            "quantity": _q(stock.quantity),
        }
    )


def discrepancy_out(
    entry: PharmacyLedgerEntry,
    product: PharmacyProduct,
    lot: PharmacyLot,
    location: PharmacyLocation,
) -> DiscrepancyOut:
    counted = entry.counted if entry.counted is not None else entry.balance_after
    return DiscrepancyOut.model_validate(
        {
            "entry": entry_out(entry),
            "ndc11": product.ndc11,
            "product": product.name,
            "schedule": product.schedule,
            "lot_number": lot.lot_number,
            "location": location.code,
            "expected": _q(counted - entry.quantity),
            "counted": _q(counted),
        }
    )


def inventory_line_out(
    entry: PharmacyLedgerEntry,
    product: PharmacyProduct,
    lot: PharmacyLot,
    location: PharmacyLocation,
) -> InventoryLineOut:
    return InventoryLineOut.model_validate(
        {
            "location": location.code,
            "ndc11": product.ndc11,
            "product": product.name,
            "schedule": product.schedule,
            "unit": product.unit,
            "lot_number": lot.lot_number,
            "expires_on": lot.expires_on,
            "quantity": _q(entry.balance_after),
            "last_seq": entry.seq,
        }
    )
