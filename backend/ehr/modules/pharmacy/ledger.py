"""The pharmacy stock ledger's hash chain (ADR 0034): appending and verifying.

One chain per tenant. Appending takes the tenant's transaction-scoped advisory lock first, so
the head is read and extended by one writer at a time (and every later row lock of a stock
movement is taken under it: one lock order, no deadlock):

    await lock_chain(session, tenant_id)
    entry = await append(session, tenant_id, kind="receive", ...)

``hash`` = SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the hashed fields
and ``prev_hash``; the first row's ``prev_hash`` is 64 zeros. :func:`verify` recomputes the
chain and reports the first row that does not match: an edited field, a missing row (a gap in
``seq``) or a reordered one.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import PharmacyLedgerEntry

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "ChainBreak",
    "LedgerVerification",
    "append",
    "entry_hash",
    "lock_chain",
    "verify",
]

GENESIS_HASH: Final = "0" * 64
HASHED_FIELDS: Final = (
    "id",
    "tenant_id",
    "seq",
    "kind",
    "location_id",
    "product_id",
    "lot_id",
    "quantity",
    "balance_after",
    "counted",
    "actor",
    "witness",
    "reason",
    "reference",
    "occurred_at",
)
_LOCK_SQL: Final = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_VERIFY_BATCH: Final = 2000


def _canonical(value: object) -> object:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        # A fixed scale (the column's): 5 and 5.000 hash alike, as PostgreSQL returns them.
        return f"{value.quantize(Decimal('0.001')):f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def entry_hash(entry: PharmacyLedgerEntry, prev_hash: str) -> str:
    """The row's hash over its hashed fields and ``prev_hash``."""
    document = {name: _canonical(getattr(entry, name)) for name in HASHED_FIELDS}
    document["prev_hash"] = prev_hash
    payload = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


async def lock_chain(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialise the tenant's stock writes until the transaction ends."""
    await session.execute(_LOCK_SQL, {"key": f"ehr.pharmacy.ledger:{tenant_id}"})


async def _head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, str]:
    row = (
        await session.execute(
            sa.select(PharmacyLedgerEntry.seq, PharmacyLedgerEntry.hash)
            .where(PharmacyLedgerEntry.tenant_id == tenant_id)
            .order_by(PharmacyLedgerEntry.seq.desc())
            .limit(1)
        )
    ).first()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


async def append(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    kind: str,
    location_id: uuid.UUID,
    product_id: uuid.UUID,
    lot_id: uuid.UUID,
    quantity: Decimal,
    balance_after: Decimal,
    actor: str,
    counted: Decimal | None = None,
    witness: str | None = None,
    reason: str | None = None,
    reference: str | None = None,
) -> PharmacyLedgerEntry:
    """Append one row (the caller holds :func:`lock_chain`; flushed, not committed)."""
    seq, prev_hash = await _head(session, tenant_id)
    entry = PharmacyLedgerEntry(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        seq=seq + 1,
        kind=kind,
        location_id=location_id,
        product_id=product_id,
        lot_id=lot_id,
        quantity=quantity,
        balance_after=balance_after,
        counted=counted,
        actor=actor,
        witness=witness,
        reason=reason,
        reference=reference,
        # Microseconds only: what PostgreSQL keeps is what is hashed.
        occurred_at=datetime.now(UTC),
        prev_hash=prev_hash,
    )
    entry.hash = entry_hash(entry, prev_hash)
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain stops verifying: the row's ``seq`` and what is wrong there."""

    seq: int
    problem: str  # seq_gap | prev_hash_mismatch | hash_mismatch


@dataclass(frozen=True, slots=True)
class LedgerVerification:
    tenant_id: uuid.UUID
    entries: int
    head_hash: str
    breaks: tuple[ChainBreak, ...]

    @property
    def intact(self) -> bool:
        return not self.breaks


async def _rows(session: AsyncSession, tenant_id: uuid.UUID) -> AsyncIterator[PharmacyLedgerEntry]:
    after = 0
    while True:
        batch = list(
            await session.scalars(
                sa.select(PharmacyLedgerEntry)
                .where(PharmacyLedgerEntry.tenant_id == tenant_id, PharmacyLedgerEntry.seq > after)
                .order_by(PharmacyLedgerEntry.seq)
                .limit(_VERIFY_BATCH)
            )
        )
        for row in batch:
            yield row
        if len(batch) < _VERIFY_BATCH:
            return
        after = batch[-1].seq


async def verify(session: AsyncSession, tenant_id: uuid.UUID) -> LedgerVerification:
    """Recompute the tenant's chain; every break found (a verifier keeps going after one)."""
    breaks: list[ChainBreak] = []
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    async for row in _rows(session, tenant_id):
        count += 1
        if row.seq != expected_seq:
            breaks.append(ChainBreak(row.seq, "seq_gap"))
        if row.prev_hash != prev_hash:
            breaks.append(ChainBreak(row.seq, "prev_hash_mismatch"))
        if entry_hash(row, row.prev_hash) != row.hash:
            breaks.append(ChainBreak(row.seq, "hash_mismatch"))
        expected_seq, prev_hash = row.seq + 1, row.hash
    return LedgerVerification(tenant_id, count, prev_hash, tuple(breaks))
