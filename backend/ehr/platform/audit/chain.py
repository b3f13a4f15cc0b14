"""The hash chains of the audit log, one per (tenant, shard): link, append and verify.

Each record's ``record_hash`` is SHA-256 over a canonical JSON document of the record's fields
(:data:`HASHED_FIELDS`, plus ``prev_hash``): keys sorted, no whitespace, UTF-8, datetimes as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``. ``prev_hash`` is the previous record's hash in the same
(tenant, shard) chain (the first record's is :data:`GENESIS_HASH`); ``seq`` is 1, 2, 3, ...
without gaps in each chain. The shard is not hashed: it names the chain, and a record moved to
another chain breaks both (see docs/adr/0008-audit-trail.md).

Writers of one chain are serialized with a transaction-scoped advisory lock (the request path
appends through the ``audit_append`` SQL function, :mod:`ehr.platform.audit.appender`). The
database refuses UPDATE and DELETE on the table (trigger); :func:`verify_chain` detects anything
done around it (an edited field, a deleted or reordered row). Truncating the newest records of a
chain is detected only against a signed checkpoint (:mod:`ehr.platform.audit.checkpoints`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import MODEL_SCHEMA, AuditRecord
from ehr.core.intake import clean_text

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "LOCK_SQL",
    "AuditEntry",
    "ChainBreak",
    "ChainKey",
    "ChainVerifier",
    "Head",
    "Pin",
    "VerificationResult",
    "app_schema",
    "append_entries",
    "canonical_json",
    "chain_heads",
    "chain_length",
    "compute_hash",
    "format_timestamp",
    "link_entries",
    "lock_key",
    "read_head",
    "storable_entry",
    "verify_chain",
    "verify_chains",
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

# Lock namespace: a chain's advisory lock key is
# hashtextextended('ehr.platform.audit:' || tenant || ':' || shard, 0) — the same expression as in
# the audit_append SQL function (migration 0005), so both ways of appending exclude each other.
_LOCK_PREFIX: Final = "ehr.platform.audit:"

# A chain: (tenant, shard). A head: (seq, record_hash) of its newest record.
ChainKey = tuple[str, int]
Head = tuple[int, str]
# A checkpoint's claim about one record: (record_hash, checkpoint seq).
Pin = tuple[str, int]


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


_ENTRY_FIELDS: Final = tuple(spec.name for spec in fields(AuditEntry))


def link_entries(
    entries: Sequence[AuditEntry],
    *,
    last_seq: int,
    last_hash: str,
    now: datetime,
    shard: int = 0,
) -> list[AuditRecord]:
    """The records for ``entries`` following (``last_seq``, ``last_hash``) in chain ``shard`` —
    pure, no I/O."""
    records: list[AuditRecord] = []
    seq, prev_hash = last_seq, last_hash
    for sent in entries:
        entry = storable_entry(sent)
        seq += 1
        # A shallow copy: asdict() deep-copies every value, on every request (the details are
        # already the storable copy).
        values = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
        values["seq"] = seq
        values["occurred_at"] = entry.occurred_at or now
        values["actor_roles"] = list(entry.actor_roles)
        record_hash = compute_hash(values, prev_hash)
        records.append(
            AuditRecord(**values, shard=shard, prev_hash=prev_hash, record_hash=record_hash)
        )
        prev_hash = record_hash
    return records


async def append_entries(
    session: AsyncSession, entries: Sequence[AuditEntry], *, shard: int = 0
) -> list[int]:
    """Append ``entries`` (all of ONE tenant) to chain ``shard`` in the session's transaction.

    For tools and tests that append inside a transaction of their own (the request path uses
    :mod:`ehr.platform.audit.appender`). Takes the chain's advisory lock (held until the
    transaction ends); returns the ``seq`` numbers given. The caller commits.
    """
    if not entries:
        return []
    tenants = {entry.tenant for entry in entries}
    if len(tenants) != 1:
        raise ValueError("append_entries takes entries of one tenant")
    tenant = tenants.pop()
    await session.execute(text(LOCK_SQL), {"key": lock_key(tenant, shard)})
    last_seq, last_hash = await read_head(session, tenant, shard)
    records = link_entries(
        entries, last_seq=last_seq, last_hash=last_hash, now=datetime.now(UTC), shard=shard
    )
    session.add_all(records)
    await session.flush()
    return [record.seq for record in records]


# A chain's lock: every appender holds it (until its transaction ends) while it reads the head
# and inserts, so appenders of a chain — in any process — queue up.
LOCK_SQL: Final = "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"


def lock_key(tenant: str, shard: int = 0) -> str:
    return f"{_LOCK_PREFIX}{tenant}:{int(shard)}"


def app_schema(bind: AsyncEngine | AsyncConnection | AsyncSession) -> str:
    """The app schema the bind's models map to (for SQL text naming our functions/tables)."""
    if isinstance(bind, AsyncSession):
        if bind.bind is None:
            raise ValueError("the session has no bind")
        return app_schema(bind.bind)
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    return validate_schema_name(str(translate.get(MODEL_SCHEMA) or MODEL_SCHEMA))


async def read_head(session: AsyncSession | AsyncConnection, tenant: str, shard: int = 0) -> Head:
    """The chain's last ``(seq, record_hash)``; ``(0, GENESIS_HASH)`` for an empty chain (in a
    session's or a connection's transaction)."""
    last = (
        await session.execute(
            select(AuditRecord.seq, AuditRecord.record_hash)
            .where(AuditRecord.tenant == tenant, AuditRecord.shard == shard)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    ).first()
    return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS_HASH)


# Every chain and its head in one statement, without reading the table: a loose index scan over
# UNIQUE (tenant, shard, seq) (each step jumps to the next (tenant, shard)), then the newest
# record of each chain.
_HEADS_SQL: Final = """
WITH RECURSIVE chains(tenant, shard) AS (
    (SELECT a.tenant, a.shard FROM "{schema}".audit_log a
      WHERE (CAST(:tenant AS text) IS NULL OR a.tenant = :tenant)
      ORDER BY a.tenant, a.shard LIMIT 1)
    UNION ALL
    SELECT n.tenant, n.shard FROM chains c CROSS JOIN LATERAL (
        SELECT a.tenant, a.shard FROM "{schema}".audit_log a
         WHERE (a.tenant, a.shard) > (c.tenant, c.shard)
           AND (CAST(:tenant AS text) IS NULL OR a.tenant = :tenant)
         ORDER BY a.tenant, a.shard LIMIT 1) n
)
SELECT c.tenant, c.shard, h.seq, h.record_hash FROM chains c CROSS JOIN LATERAL (
    SELECT a.seq, a.record_hash FROM "{schema}".audit_log a
     WHERE a.tenant = c.tenant AND a.shard = c.shard ORDER BY a.seq DESC LIMIT 1) h
ORDER BY c.tenant, c.shard
"""


async def chain_heads(session: AsyncSession, tenant: str | None = None) -> dict[ChainKey, Head]:
    """The head of every (tenant, shard) chain (of ``tenant`` only, when given)."""
    rows = await session.execute(
        text(_HEADS_SQL.format(schema=app_schema(session))), {"tenant": tenant}
    )
    return {(str(t), int(s)): (int(q), str(h)) for t, s, q, h in rows}


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place where the trail does not hold: a record of a chain, or a checkpoint."""

    tenant: str
    seq: int | None
    record_id: int | None
    # Records: "hash_mismatch" | "prev_hash_mismatch" | "seq_gap" | "tenant_mismatch" |
    # "checkpoint_mismatch" (not the record a checkpoint signed) | "missing_after_checkpoint"
    # (a checkpoint names a record the chain no longer has). Checkpoints: "checkpoint_*".
    problem: str
    expected: str | None = None
    found: str | None = None
    shard: int | None = 0
    checkpoint: int | None = None

    def describe(self) -> str:
        parts = [f"tenant={self.tenant}"]
        if self.shard is not None:
            parts.append(f"shard={self.shard}")
        if self.seq is not None:
            parts.append(f"seq={self.seq}")
        if self.record_id is not None:
            parts.append(f"id={self.record_id}")
        if self.checkpoint is not None:
            parts.append(f"checkpoint={self.checkpoint}")
        text_ = " ".join(parts) + f": {self.problem}"
        if self.expected is not None:
            text_ += f" (expected {self.expected}, found {self.found})"
        return text_


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of :func:`verify_chain` / :func:`verify_chains` (and of the checkpoints)."""

    ok: bool
    tenants: tuple[str, ...] = ()
    records_checked: int = 0
    broken: ChainBreak | None = None
    # (tenant, shard) -> (seq, record_hash) of every verified chain.
    heads: dict[ChainKey, Head] = field(default_factory=dict)
    checkpoints_checked: int = 0


class ChainVerifier:
    """Walks ONE chain's records in ``seq`` order; :meth:`check` returns the first break.

    ``pins``: ``seq -> (record_hash, checkpoint seq)`` that signed checkpoints say the chain
    holds; a record there with another hash, or a chain ending before a pinned ``seq``
    (:meth:`finish`), is a break.
    """

    def __init__(self, tenant: str, shard: int = 0, pins: Mapping[int, Pin] | None = None) -> None:
        self.tenant = tenant
        self.shard = shard
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.checked = 0
        self.pins = pins or {}

    def _break(
        self, record: AuditRecord, problem: str, expected: str | None, found: str | None
    ) -> ChainBreak:
        return ChainBreak(
            self.tenant, record.seq, record.id, problem, expected, found, shard=self.shard
        )

    def check(self, record: AuditRecord) -> ChainBreak | None:
        self.checked += 1
        name = self.tenant
        if record.seq != self.expected_seq:
            return self._break(record, "seq_gap", str(self.expected_seq), str(record.seq))
        if record.prev_hash != self.prev_hash:
            return self._break(record, "prev_hash_mismatch", self.prev_hash, record.prev_hash)
        fields = {column: getattr(record, column) for column in HASHED_FIELDS}
        if fields["tenant"] != name:
            return self._break(record, "tenant_mismatch", name, record.tenant)
        recomputed = compute_hash(fields, record.prev_hash)
        if recomputed != record.record_hash:
            return self._break(record, "hash_mismatch", recomputed, record.record_hash)
        pin = self.pins.get(record.seq)
        if pin is not None and pin[0] != record.record_hash:
            return ChainBreak(
                name,
                record.seq,
                record.id,
                "checkpoint_mismatch",
                pin[0],
                record.record_hash,
                shard=self.shard,
                checkpoint=pin[1],
            )
        self.expected_seq += 1
        self.prev_hash = record.record_hash
        return None

    def finish(self) -> ChainBreak | None:
        """After the last record: a checkpoint naming a record past the end is a break."""
        last = self.expected_seq - 1
        beyond = [seq for seq in self.pins if seq > last]
        if not beyond:
            return None
        seq = min(beyond)
        return ChainBreak(
            self.tenant,
            seq,
            None,
            "missing_after_checkpoint",
            f"seq {seq}",
            f"chain ends at seq {last}",
            shard=self.shard,
            checkpoint=self.pins[seq][1],
        )

    @property
    def head(self) -> Head | None:
        """The last verified record's (seq, hash) (None for an empty chain)."""
        return (self.expected_seq - 1, self.prev_hash) if self.expected_seq > 1 else None


async def _verify_one(
    session: AsyncSession, verifier: ChainVerifier, batch_size: int
) -> ChainBreak | None:
    stream = await session.stream_scalars(
        select(AuditRecord)
        .where(AuditRecord.tenant == verifier.tenant, AuditRecord.shard == verifier.shard)
        .order_by(AuditRecord.seq)
        .execution_options(yield_per=batch_size)
    )
    async for record in stream:
        broken = verifier.check(record)
        session.expunge(record)
        if broken is not None:
            await stream.close()
            return broken
    return verifier.finish()


async def verify_chains(
    session: AsyncSession,
    chains: Sequence[ChainKey],
    *,
    pins: Mapping[ChainKey, Mapping[int, Pin]] | None = None,
    batch_size: int = 1000,
) -> VerificationResult:
    """Recompute each of ``chains`` (with the checkpoints' ``pins``) and report the first break.

    Checks, in ``seq`` order: seq is 1, 2, 3, ... (a deleted row is a gap), ``prev_hash`` is the
    previous record's ``record_hash``, ``record_hash`` matches the recomputed hash, and every
    record a checkpoint signed is there with that hash.
    """
    pins = pins or {}
    tenants = tuple(sorted({tenant for tenant, _ in chains}))
    checked = 0
    heads: dict[ChainKey, Head] = {}
    for tenant, shard in sorted(chains):
        verifier = ChainVerifier(tenant, shard, pins.get((tenant, shard)))
        broken = await _verify_one(session, verifier, batch_size)
        checked += verifier.checked
        if broken is not None:
            return VerificationResult(
                ok=False, tenants=tenants, records_checked=checked, broken=broken, heads=heads
            )
        if verifier.head is not None:
            heads[(tenant, shard)] = verifier.head
    return VerificationResult(ok=True, tenants=tenants, records_checked=checked, heads=heads)


async def verify_chain(
    session: AsyncSession, tenant: str | None = None, *, batch_size: int = 1000
) -> VerificationResult:
    """Recompute every shard chain of ``tenant`` (or of every tenant); the first broken link.

    The chains alone (no checkpoints): :func:`ehr.platform.audit.checkpoints.verify_trail`
    checks both.
    """
    chains = list(await chain_heads(session, tenant))
    return await verify_chains(session, chains, batch_size=batch_size)


async def chain_length(session: AsyncSession, tenant: str) -> int:
    """How many records the tenant's chains hold (every shard)."""
    count = await session.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.tenant == tenant)
    )
    return int(count or 0)
