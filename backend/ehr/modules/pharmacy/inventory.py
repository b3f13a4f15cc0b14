"""Pharmacy stock (ADR 0034): products, lots, balances and every movement through the ledger.

Every movement runs in the caller's transaction in one lock order — the tenant's ledger lock,
then the balance rows ``FOR UPDATE`` — and appends its ledger rows before the caller commits:

    book = StockBook(session, tenant_id=..., tenant="clinic-a", actor="user:<uuid>")
    await book.receive(location_id, product_id, lot_number="L1", expires_on=..., quantity=...)
    picked = await book.take(location_id, product_id, Decimal(10), reference="MedicationDispense/1")

``take`` picks FEFO: the location's lots of the product with stock that are neither expired
nor recalled, earliest expiry first (several lots when one is not enough). A balance never goes
below zero: the movement is refused (409 ``insufficient_stock``) and nothing is written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import (
    PharmacyLedgerEntry,
    PharmacyLocation,
    PharmacyLot,
    PharmacyProduct,
    PharmacyStock,
)
from ehr.modules.pharmacy import ledger
from ehr.modules.pharmacy.errors import (
    InsufficientStockError,
    LocationNotFoundError,
    LotExpiredError,
    LotNotFoundError,
    LotRecalledError,
    LotTakenError,
    ProductNotFoundError,
    QuantityNotAllowedError,
    WitnessRequiredError,
)
from ehr.platform import events

__all__ = ["Picked", "StockBook", "check_quantity", "stock_gate"]

_ZERO: Final = Decimal(0)
# numeric(14, 3) holds 11 integer digits; a balance stays well inside.
_CEILING: Final = Decimal(10) ** 10


_GATES: dict[tuple[int, uuid.UUID], asyncio.Lock] = {}


def stock_gate(tenant_id: uuid.UUID) -> asyncio.Lock:
    """This process's gate in front of the tenant's ledger lock.

    A stock movement holds a database connection while it waits for the ledger lock, and the
    one holding the lock may need another (the audit trail) before it commits. Fifty requests
    waiting at once would hold fifty connections and starve the holder: requests of one process
    queue here instead, without a connection, so at most one per process waits in PostgreSQL.
    """
    key = (id(asyncio.get_running_loop()), tenant_id)
    gate = _GATES.get(key)
    if gate is None:
        gate = _GATES[key] = asyncio.Lock()
    return gate


@dataclass(frozen=True, slots=True)
class Picked:
    """One lot a ``take`` drew from, with its ledger row."""

    lot: PharmacyLot
    quantity: Decimal
    entry: PharmacyLedgerEntry


def check_quantity(
    product: PharmacyProduct, quantity: Decimal, *, allow_zero: bool = False
) -> None:
    """Refuse a quantity the product cannot move: not positive (zero where allowed), a
    fraction of an indivisible unit, more than three decimals."""
    if quantity < _ZERO or (quantity == _ZERO and not allow_zero):
        raise QuantityNotAllowedError("The quantity must be positive", extra={"unit": product.unit})
    if quantity != quantity.quantize(Decimal("0.001")):
        raise QuantityNotAllowedError("At most three decimals", extra={"unit": product.unit})
    if not product.divisible and quantity != quantity.to_integral_value():
        raise QuantityNotAllowedError(
            f"{product.unit} of this product are counted whole", extra={"unit": product.unit}
        )


class StockBook:
    """The stock of one tenant, moved by one actor (``user:<uuid>``) in one transaction."""

    def __init__(self, session: AsyncSession, *, tenant_id: uuid.UUID, tenant: str, actor: str):
        self.session = session
        self.tenant_id = tenant_id
        self.tenant = tenant
        self.actor = actor
        self._locked = False

    # --- look-ups ------------------------------------------------------------------------

    async def location(self, location_id: uuid.UUID) -> PharmacyLocation:
        found = await self.session.get(PharmacyLocation, location_id)
        if found is None or found.tenant_id != self.tenant_id:
            raise LocationNotFoundError("No pharmacy location of this tenant has this id")
        return found

    async def product(self, product_id: uuid.UUID) -> PharmacyProduct:
        found = await self.session.get(PharmacyProduct, product_id)
        if found is None or found.tenant_id != self.tenant_id:
            raise ProductNotFoundError("No product of this tenant has this id")
        return found

    async def lot(self, lot_id: uuid.UUID) -> PharmacyLot:
        found = await self.session.get(PharmacyLot, lot_id)
        if found is None or found.tenant_id != self.tenant_id:
            raise LotNotFoundError("No lot of this tenant has this id")
        return found

    async def lock(self) -> None:
        """Take the tenant's ledger lock (once per transaction); every movement does."""
        if not self._locked:
            await ledger.lock_chain(self.session, self.tenant_id)
            self._locked = True

    async def _balance(self, location_id: uuid.UUID, lot: PharmacyLot) -> PharmacyStock:
        """The balance row, locked (created at zero when the lot was never there)."""
        await self.session.execute(
            insert(PharmacyStock)
            .values(
                location_id=location_id,
                lot_id=lot.id,
                tenant_id=self.tenant_id,
                product_id=lot.product_id,
                quantity=_ZERO,
            )
            .on_conflict_do_nothing(index_elements=["location_id", "lot_id"])
        )
        row = await self.session.scalar(
            sa.select(PharmacyStock)
            .where(PharmacyStock.location_id == location_id, PharmacyStock.lot_id == lot.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None  # noqa: S101 - inserted above
        return row

    async def _move(
        self,
        kind: str,
        location_id: uuid.UUID,
        lot: PharmacyLot,
        delta: Decimal,
        *,
        counted: Decimal | None = None,
        witness: str | None = None,
        reason: str | None = None,
        reference: str | None = None,
    ) -> PharmacyLedgerEntry:
        await self.lock()
        balance = await self._balance(location_id, lot)
        after = balance.quantity + delta
        if after > _CEILING:
            raise QuantityNotAllowedError(
                "A balance above 10^10 units is not kept", extra={"lot_id": str(lot.id)}
            )
        if after < _ZERO:
            raise InsufficientStockError(
                "The lot does not hold that much at this location",
                extra={"available": f"{balance.quantity:f}", "lot_id": str(lot.id)},
            )
        balance.quantity = after
        balance.updated_at = datetime.now(UTC)
        return await ledger.append(
            self.session,
            self.tenant_id,
            kind=kind,
            location_id=location_id,
            product_id=lot.product_id,
            lot_id=lot.id,
            quantity=delta,
            balance_after=after,
            actor=self.actor,
            counted=counted,
            witness=witness,
            reason=reason,
            reference=reference,
        )

    # --- movements -----------------------------------------------------------------------

    async def receive(
        self,
        location_id: uuid.UUID,
        product_id: uuid.UUID,
        *,
        lot_number: str,
        expires_on: date,
        quantity: Decimal,
        reference: str | None = None,
    ) -> PharmacyLedgerEntry:
        """Stock arriving (a delivery): the lot is created on first sight; a known lot number
        with another expiry is refused (409 — a typo would misplace the expiry), and so is
        expired stock."""
        await self.location(location_id)
        product = await self.product(product_id)
        check_quantity(product, quantity)
        if expires_on < datetime.now(UTC).date():
            raise LotExpiredError(
                "Expired stock is not received", extra={"expires_on": expires_on.isoformat()}
            )
        await self.lock()
        lot = await self.session.scalar(
            sa.select(PharmacyLot).where(
                PharmacyLot.product_id == product.id, PharmacyLot.lot_number == lot_number
            )
        )
        if lot is None:
            lot = PharmacyLot(
                id=uuid.uuid4(),
                tenant_id=self.tenant_id,
                product_id=product.id,
                lot_number=lot_number,
                expires_on=expires_on,
            )
            self.session.add(lot)
            await self.session.flush()
        elif lot.expires_on != expires_on:
            raise LotTakenError(
                "This lot number is known with another expiry",
                extra={"lot_id": str(lot.id), "expires_on": lot.expires_on.isoformat()},
            )
        return await self._move("receive", location_id, lot, quantity, reference=reference)

    async def adjust(
        self, location_id: uuid.UUID, lot_id: uuid.UUID, delta: Decimal, *, reason: str
    ) -> PharmacyLedgerEntry:
        """A correction with a reason (damaged, found); never below zero."""
        await self.location(location_id)
        lot = await self.lot(lot_id)
        check_quantity(await self.product(lot.product_id), abs(delta))
        entry = await self._move("adjust", location_id, lot, delta, reason=reason)
        await self._alert_low(location_id, lot.product_id)
        return entry

    async def transfer(
        self,
        from_location: uuid.UUID,
        to_location: uuid.UUID,
        lot_id: uuid.UUID,
        quantity: Decimal,
        *,
        reference: str | None = None,
    ) -> tuple[PharmacyLedgerEntry, PharmacyLedgerEntry]:
        """Move stock between locations: two rows, out then in, in one transaction."""
        if from_location == to_location:
            raise QuantityNotAllowedError("A transfer needs two different locations")
        await self.location(from_location)
        await self.location(to_location)
        lot = await self.lot(lot_id)
        check_quantity(await self.product(lot.product_id), quantity)
        out = await self._move("transfer_out", from_location, lot, -quantity, reference=reference)
        into = await self._move("transfer_in", to_location, lot, quantity, reference=reference)
        await self._alert_low(from_location, lot.product_id)
        return out, into

    async def count(
        self, location_id: uuid.UUID, lot_id: uuid.UUID, counted: Decimal
    ) -> PharmacyLedgerEntry:
        """A physical count: the balance becomes what was counted; the difference is the row's
        quantity (zero when the count agrees) — a discrepancy when it is not."""
        await self.location(location_id)
        lot = await self.lot(lot_id)
        check_quantity(await self.product(lot.product_id), counted, allow_zero=True)
        await self.lock()
        balance = await self._balance(location_id, lot)
        return await self._move(
            "count", location_id, lot, counted - balance.quantity, counted=counted
        )

    async def waste(
        self,
        location_id: uuid.UUID,
        lot_id: uuid.UUID,
        quantity: Decimal,
        *,
        reason: str,
        witness: str | None,
        reference: str | None = None,
    ) -> PharmacyLedgerEntry:
        """Stock destroyed (a partial dose, a broken vial); a scheduled product needs the
        witness the caller authenticated."""
        await self.location(location_id)
        lot = await self.lot(lot_id)
        product = await self.product(lot.product_id)
        check_quantity(product, quantity)
        if product.schedule is not None and witness is None:
            raise WitnessRequiredError(
                f"Wasting a schedule {product.schedule[1:]} product needs a witness"
            )
        entry = await self._move(
            "waste",
            location_id,
            lot,
            -quantity,
            witness=witness,
            reason=reason,
            reference=reference,
        )
        await self._alert_low(location_id, product.id)
        return entry

    async def take(
        self,
        location_id: uuid.UUID,
        product_id: uuid.UUID,
        quantity: Decimal,
        *,
        reference: str,
        today: date | None = None,
    ) -> list[Picked]:
        """Dispense ``quantity`` FEFO from the location (``kind`` dispense): the lots with
        stock, unexpired (``expires_on`` ≥ today) and not recalled, earliest expiry first."""
        await self.location(location_id)
        product = await self.product(product_id)
        check_quantity(product, quantity)
        await self.lock()
        today = today or datetime.now(UTC).date()
        rows = (
            await self.session.execute(
                sa.select(PharmacyStock, PharmacyLot)
                .join(PharmacyLot, PharmacyLot.id == PharmacyStock.lot_id)
                .where(
                    PharmacyStock.location_id == location_id,
                    PharmacyStock.product_id == product.id,
                    PharmacyStock.quantity > 0,
                    PharmacyLot.expires_on >= today,
                    PharmacyLot.recalled_at.is_(None),
                )
                .order_by(PharmacyLot.expires_on, PharmacyLot.lot_number)
                .with_for_update(of=PharmacyStock)
                .execution_options(populate_existing=True)
            )
        ).all()
        available = sum((stock.quantity for stock, _ in rows), _ZERO)
        if available < quantity:
            raise InsufficientStockError(
                "Not enough dispensable stock of this product at this location",
                extra={"available": f"{available:f}", "product_id": str(product.id)},
            )
        picked: list[Picked] = []
        remaining = quantity
        for stock, lot in rows:
            if remaining <= _ZERO:
                break
            part = min(stock.quantity, remaining)
            entry = await self._move("dispense", location_id, lot, -part, reference=reference)
            picked.append(Picked(lot, part, entry))
            remaining -= part
        await self._alert_low(location_id, product.id)
        return picked

    async def put_back(
        self,
        location_id: uuid.UUID,
        lot_id: uuid.UUID,
        quantity: Decimal,
        *,
        reference: str | None,
        today: date | None = None,
    ) -> PharmacyLedgerEntry:
        """A return to stock (an undispensed or returned, unopened supply): only into a lot
        that may still be dispensed."""
        await self.location(location_id)
        lot = await self.lot(lot_id)
        check_quantity(await self.product(lot.product_id), quantity)
        dispensable(lot, today or datetime.now(UTC).date())
        return await self._move("return", location_id, lot, quantity, reference=reference)

    async def recall(self, lot_id: uuid.UUID, reason: str) -> PharmacyLot:
        """Mark a lot recalled: it is never picked or dispensed again (its stock stays on the
        books until wasted or returned to the supplier by an adjustment)."""
        lot = await self.lot(lot_id)
        if lot.recalled_at is None:
            lot.recalled_at = datetime.now(UTC)
            lot.recall_reason = reason
            await self.session.flush()
        return lot

    # --- alerts --------------------------------------------------------------------------

    async def _alert_low(self, location_id: uuid.UUID, product_id: uuid.UUID) -> None:
        product = await self.product(product_id)
        if product.reorder_level <= _ZERO:
            return
        total = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(PharmacyStock.quantity), 0)).where(
                PharmacyStock.location_id == location_id, PharmacyStock.product_id == product_id
            )
        )
        if Decimal(total or 0) >= product.reorder_level:
            return
        location = await self.location(location_id)
        events.emit(
            self.session,
            events.new_event(
                "medication.stock_low",
                tenant=self.tenant,
                data={
                    "location": location.code,
                    "product": str(product.id),
                    "ndc": product.ndc11,
                    "on_hand": f"{Decimal(total or 0):f}",
                    "reorder_level": f"{product.reorder_level:f}",
                },
            ),
        )


def dispensable(lot: PharmacyLot, today: date) -> None:
    """Refuse a recalled or expired lot."""
    if lot.recalled_at is not None:
        raise LotRecalledError("This lot is recalled", extra={"lot_id": str(lot.id)})
    if lot.expires_on < today:
        raise LotExpiredError(
            "This lot has expired",
            extra={"lot_id": str(lot.id), "expires_on": lot.expires_on.isoformat()},
        )


async def balances(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    location_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
) -> Sequence[tuple[PharmacyStock, PharmacyLot, PharmacyProduct]]:
    """The tenant's balances by lot (non-zero), FEFO order within a product."""
    query = (
        sa.select(PharmacyStock, PharmacyLot, PharmacyProduct)
        .join(PharmacyLot, PharmacyLot.id == PharmacyStock.lot_id)
        .join(PharmacyProduct, PharmacyProduct.id == PharmacyStock.product_id)
        .where(PharmacyStock.tenant_id == tenant_id, PharmacyStock.quantity > 0)
        .order_by(PharmacyProduct.name, PharmacyLot.expires_on, PharmacyLot.lot_number)
    )
    if location_id is not None:
        query = query.where(PharmacyStock.location_id == location_id)
    if product_id is not None:
        query = query.where(PharmacyStock.product_id == product_id)
    return [(s, lot, p) for s, lot, p in (await session.execute(query)).all()]
