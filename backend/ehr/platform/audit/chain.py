"""The per-tenant hash chain of the audit log: append and verify.

Each record's ``record_hash`` is SHA-256 over a canonical JSON document of the record's fields
(:data:`HASHED_FIELDS`, plus ``prev_hash``): keys sorted, no whitespace, UTF-8, datetimes as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``. ``prev_hash`` is the tenant's previous record's hash (the first
record's is :data:`GENESIS_HASH`); ``seq`` is 1, 2, 3, ... without gaps.

Writers of one tenant are serialized with a transaction-scoped advisory lock, so ``seq`` and
``prev_hash`` are read and the new row inserted without a race. The database refuses UPDATE and
DELETE on the table (trigger); :func:`verify_chain` detects anything done around it (an edited
field, a deleted or reordered row). Truncating the newest records of a chain is NOT detectable
from the chain alone: compare with an exported head (see docs/adr/0008-audit-trail.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import AuditRecord
from ehr.core.intake import clean_text

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "LOCK_SQL",
    "AuditEntry",
    "ChainBreak",
    "ChainVerifier",
    "VerificationResult",
    "append_entries",
    "canonical_json",
    "chain_length",
    "compute_hash",
    "format_timestamp",
    "link_entries",
    "lock_key",
    "read_head",
    "storable_entry",
    "verify_chain",
]

GENESIS_HASH: Final = "0" * 64

# The fields covered by record_hash, in the canonical document (plus "prev_hash").
# Never change this list or the encoding: every stored hash depends on them.
HASHED_FIELDS: Final = (
    "tenant",
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_roles",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "outcome",
    "http_status",
    "source_ip",
    "user_agent",
    "request_id",
    "purpose_of_use",
    "break_glass",
    "break_glass_reason",
    "details",
)

# Lock namespace: the advisory lock key is hashtextextended('ehr.platform.audit:' || tenant, 0).
_LOCK_PREFIX: Final = "ehr.platform.audit:"


def format_timestamp(value: datetime) -> str:
    """The canonical timestamp: UTC, microseconds, ``Z`` (naive values are refused)."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_value(name: str, value: Any) -> Any:
    if name == "occurred_at":
        return format_timestamp(value)
    if name == "actor_roles":
        return list(value or ())
    return value


def canonical_json(fields: Mapping[str, Any], prev_hash: str) -> bytes:
    """The canonical document hashed for one record (explicit field list, sorted keys)."""
    document = {name: _canonical_value(name, fields.get(name)) for name in HASHED_FIELDS}
    document["prev_hash"] = prev_hash
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """``record_hash`` of a record with ``fields`` following ``prev_hash``."""
    return hashlib.sha256(canonical_json(fields, prev_hash)).hexdigest()


@dataclass(slots=True)
class AuditEntry:
    """One record to append (everything but its chain position and hashes)."""

    tenant: str
    actor_type: str
    action: str
    outcome: str
    actor_id: str | None = None
    actor_roles: Sequence[str] = ()
    resource_type: str | None = None
    resource_id: str | None = None
    patient_id: str | None = None
    http_status: int | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    purpose_of_use: str | None = None
    break_glass: bool = False
    break_glass_reason: str | None = None
    details: dict[str, Any] | None = None
    # Set at append time when None (the database's clock is not used: the hash needs it first).
    occurred_at: datetime | None = None


# Member of ``details`` naming the fields whose values were altered to be stored (see below).
ALTERED_MEMBER: Final = "_altered"


def _column_lengths() -> dict[str, int]:
    lengths: dict[str, int] = {}
    for column in AuditRecord.__table__.columns:
        length = getattr(column.type, "length", None)
        if isinstance(length, int):
            lengths[column.name] = length
    return lengths


_COLUMN_LENGTHS: Final = _column_lengths()
_MAX_DETAIL_TEXT: Final = 4096


def _storable_value(value: Any, path: str, altered: list[str]) -> Any:
    if isinstance(value, str):
        cleaned, changed = clean_text(value)
        if len(cleaned) > _MAX_DETAIL_TEXT:
            cleaned, changed = cleaned[:_MAX_DETAIL_TEXT], True
        if changed:
            altered.append(path)
        return cleaned
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            name, changed = clean_text(str(key))
            if changed:
                altered.append(f"{path}.{name}")
            result[name] = _storable_value(item, f"{path}.{name}", altered)
        return result
    if isinstance(value, list | tuple):
        return [_storable_value(item, f"{path}[{i}]", altered) for i, item in enumerate(value)]
    if isinstance(value, float) and value != value:  # NaN cannot be stored in JSON
        altered.append(path)
        return None
    return value


def storable_entry(entry: AuditEntry) -> AuditEntry:
    """``entry`` as the database can store it, whatever the caller sent.

    Text the database cannot hold (NUL, lone surrogates) is replaced with U+FFFD and text longer
    than its column is clipped; the record then names the altered fields in
    ``details["_altered"]``, so the trail says the stored value is not the value sent. Bad input
    must never be able to stop the audit record from being written.
    """
    altered: list[str] = []
    changes: dict[str, Any] = {}
    for spec in fields(entry):
        value = getattr(entry, spec.name)
        if spec.name == "details" or not isinstance(value, str | list | tuple):
            continue
        if isinstance(value, str):
            cleaned, changed = clean_text(value)
            limit = _COLUMN_LENGTHS.get(spec.name)
            if limit is not None and len(cleaned) > limit:
                cleaned, changed = cleaned[:limit], True
            if changed:
                altered.append(spec.name)
                changes[spec.name] = cleaned
        elif spec.name == "actor_roles":
            roles = [clean_text(str(role))[0][:32] for role in value]
            if roles != list(value):
                altered.append(spec.name)
                changes[spec.name] = roles
    details = entry.details
    if details is not None:
        cleaned_details = _storable_value(details, "details", altered)
        if cleaned_details != details:
            changes["details"] = cleaned_details
    if not altered:
        return replace(entry, **changes) if changes else entry
    details_out = dict(changes.get("details", details) or {})
    details_out[ALTERED_MEMBER] = sorted(set(altered))
    changes["details"] = details_out
    return replace(entry, **changes)


def link_entries(
    entries: Sequence[AuditEntry], *, last_seq: int, last_hash: str, now: datetime
) -> list[AuditRecord]:
    """The records for ``entries`` following (``last_seq``, ``last_hash``) — pure, no I/O."""
    records: list[AuditRecord] = []
    seq, prev_hash = last_seq, last_hash
    for sent in entries:
        entry = storable_entry(sent)
        seq += 1
        values = asdict(entry)
        values["seq"] = seq
        values["occurred_at"] = entry.occurred_at or now
        values["actor_roles"] = list(entry.actor_roles)
        record_hash = compute_hash(values, prev_hash)
        records.append(AuditRecord(**values, prev_hash=prev_hash, record_hash=record_hash))
        prev_hash = record_hash
    return records


async def append_entries(session: AsyncSession, entries: Sequence[AuditEntry]) -> list[int]:
    """Append ``entries`` (all of ONE tenant) to its chain in the session's transaction.

    Takes the tenant's advisory lock (held until the transaction ends), so concurrent writers
    of a tenant queue up; returns the ``seq`` numbers given. The caller commits.
    """
    if not entries:
        return []
    tenants = {entry.tenant for entry in entries}
    if len(tenants) != 1:
        raise ValueError("append_entries takes entries of one tenant")
    tenant = tenants.pop()
    await session.execute(text(LOCK_SQL), {"key": lock_key(tenant)})
    last_seq, last_hash = await read_head(session, tenant)
    records = link_entries(entries, last_seq=last_seq, last_hash=last_hash, now=datetime.now(UTC))
    session.add_all(records)
    await session.flush()
    return [record.seq for record in records]


# The tenant's chain lock: every appender holds it (until its transaction ends) while it reads
# the head and inserts, so appenders of a tenant — in any process — queue up.
LOCK_SQL: Final = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"


def lock_key(tenant: str) -> str:
    return _LOCK_PREFIX + tenant


async def read_head(session: AsyncSession, tenant: str) -> tuple[int, str]:
    """The tenant's last ``(seq, record_hash)``; ``(0, GENESIS_HASH)`` for an empty chain."""
    last = (
        await session.execute(
            select(AuditRecord.seq, AuditRecord.record_hash)
            .where(AuditRecord.tenant == tenant)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    ).first()
    return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first record where a chain does not hold."""

    tenant: str
    seq: int
    record_id: int
    problem: str  # "hash_mismatch" | "prev_hash_mismatch" | "seq_gap" | "tenant_mismatch"
    expected: str | None = None
    found: str | None = None

    def describe(self) -> str:
        text_ = f"tenant={self.tenant} seq={self.seq} id={self.record_id}: {self.problem}"
        if self.expected is not None:
            text_ += f" (expected {self.expected}, found {self.found})"
        return text_


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of :func:`verify_chain`."""

    ok: bool
    tenants: tuple[str, ...] = ()
    records_checked: int = 0
    broken: ChainBreak | None = None
    heads: dict[str, str] = field(default_factory=dict)


class ChainVerifier:
    """Walks ONE tenant's records in ``seq`` order; :meth:`check` returns the first break."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.checked = 0

    def check(self, record: AuditRecord) -> ChainBreak | None:
        self.checked += 1
        name = self.tenant
        if record.seq != self.expected_seq:
            return ChainBreak(
                name, record.seq, record.id, "seq_gap", str(self.expected_seq), str(record.seq)
            )
        if record.prev_hash != self.prev_hash:
            return ChainBreak(
                name, record.seq, record.id, "prev_hash_mismatch", self.prev_hash, record.prev_hash
            )
        fields = {column: getattr(record, column) for column in HASHED_FIELDS}
        if fields["tenant"] != name:
            return ChainBreak(name, record.seq, record.id, "tenant_mismatch", name, record.tenant)
        recomputed = compute_hash(fields, record.prev_hash)
        if recomputed != record.record_hash:
            return ChainBreak(
                name, record.seq, record.id, "hash_mismatch", recomputed, record.record_hash
            )
        self.expected_seq += 1
        self.prev_hash = record.record_hash
        return None

    @property
    def head(self) -> str | None:
        """The last verified record's hash (None for an empty chain)."""
        return self.prev_hash if self.expected_seq > 1 else None


async def _tenants(session: AsyncSession) -> list[str]:
    rows = await session.scalars(select(AuditRecord.tenant).distinct().order_by(AuditRecord.tenant))
    return list(rows)


async def verify_chain(
    session: AsyncSession, tenant: str | None = None, *, batch_size: int = 1000
) -> VerificationResult:
    """Recompute the chain of ``tenant`` (or of every tenant) and report the first broken link.

    Checks, in ``seq`` order: seq is 1, 2, 3, ... (a deleted row is a gap), ``prev_hash`` is the
    previous record's ``record_hash``, and ``record_hash`` matches the recomputed hash.
    """
    tenants = [tenant] if tenant is not None else await _tenants(session)
    checked = 0
    heads: dict[str, str] = {}
    for name in tenants:
        verifier = ChainVerifier(name)
        stream = await session.stream_scalars(
            select(AuditRecord)
            .where(AuditRecord.tenant == name)
            .order_by(AuditRecord.seq)
            .execution_options(yield_per=batch_size)
        )
        async for record in stream:
            broken = verifier.check(record)
            session.expunge(record)
            if broken is not None:
                await stream.close()
                return VerificationResult(
                    ok=False,
                    tenants=tuple(tenants),
                    records_checked=checked + verifier.checked,
                    broken=broken,
                )
        checked += verifier.checked
        if verifier.head is not None:
            heads[name] = verifier.head
    return VerificationResult(ok=True, tenants=tuple(tenants), records_checked=checked, heads=heads)


async def chain_length(session: AsyncSession, tenant: str) -> int:
    """How many records the tenant's chain holds."""
    count = await session.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.tenant == tenant)
    )
    return int(count or 0)
