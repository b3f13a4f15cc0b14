"""The audit hash chain without a database: canonical hashing and the verifier."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from support.audit_trail import patient_read

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainBreak,
    ChainVerifier,
    canonical_json,
    compute_hash,
    format_timestamp,
    link_entries,
)

WHEN = datetime(2026, 11, 21, 6, 30, 0, 123456, tzinfo=UTC)


def _fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "tenant": "t-one",
        "seq": 1,
        "occurred_at": WHEN,
        "actor_type": "user",
        "actor_id": "9a3f0d1e-0000-4000-8000-000000000001",
        "actor_roles": ["nurse", "physician"],
        "action": "patient:read",
        "resource_type": "Patient",
        "resource_id": "123",
        "patient_id": "123",
        "outcome": "success",
        "http_status": 200,
        "source_ip": "10.0.0.7",
        "user_agent": "pytest",
        "request_id": "req-1",
        "purpose_of_use": "TREAT",
        "break_glass": False,
        "break_glass_reason": None,
        "details": {"b": 2, "a": [1, "x"]},
    }
    fields.update(overrides)
    return fields


def _chain(count: int = 5, tenant: str = "t-one") -> list[AuditRecord]:
    entries = [
        patient_read(
            tenant,
            str(100 + i),
            actor_id=f"user-{i % 2}",
            actor_roles=("physician",),
            http_status=200,
            occurred_at=WHEN + timedelta(seconds=i),
        )
        for i in range(count)
    ]
    records = link_entries(entries, last_seq=0, last_hash=GENESIS_HASH, now=WHEN)
    for number, record in enumerate(records, start=1):
        record.id = 1000 + number
    return records


def _verify(records: list[AuditRecord], tenant: str = "t-one") -> ChainBreak | None:
    verifier = ChainVerifier(tenant)
    for record in records:
        broken = verifier.check(record)
        if broken is not None:
            return broken
    return None


def test_canonical_json_is_stable_and_explicit() -> None:
    document = canonical_json(_fields(), GENESIS_HASH)
    # Sorted keys, no whitespace, fixed UTC timestamp format, every field present.
    assert document.startswith(b'{"action":"patient:read","actor_id":')
    assert b'"occurred_at":"2026-11-21T06:30:00.123456Z"' in document
    assert b'"details":{"a":[1,"x"],"b":2}' in document
    assert b" " not in document
    assert document.count(b'":') >= len(HASHED_FIELDS) + 1
    # A known value: changing the encoding would orphan every stored hash.
    assert compute_hash(_fields(), GENESIS_HASH) == hashlib.sha256(document).hexdigest()
    assert (
        compute_hash(_fields(), GENESIS_HASH)
        == "fdbd9843c256a6f4509f5f141e9a7607413b38c61ddd8442ed5d071a078bd94a"
    )


def test_hash_does_not_depend_on_key_order_or_timezone_spelling() -> None:
    reordered = dict(reversed(list(_fields().items())))
    assert compute_hash(reordered, GENESIS_HASH) == compute_hash(_fields(), GENESIS_HASH)
    plus_two = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert compute_hash(_fields(occurred_at=plus_two), GENESIS_HASH) == compute_hash(
        _fields(), GENESIS_HASH
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor_id", "someone-else"),
        ("patient_id", "124"),
        ("outcome", "failure"),
        ("break_glass", True),
        ("details", {"b": 2, "a": [1, "y"]}),
        ("occurred_at", WHEN + timedelta(microseconds=1)),
        ("actor_roles", ["physician", "nurse"]),
        ("http_status", None),
    ],
)
def test_every_field_changes_the_hash(field: str, value: object) -> None:
    assert compute_hash(_fields(**{field: value}), GENESIS_HASH) != compute_hash(
        _fields(), GENESIS_HASH
    )


def test_prev_hash_changes_the_hash() -> None:
    assert compute_hash(_fields(), "1" * 64) != compute_hash(_fields(), GENESIS_HASH)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 1))


def test_linked_entries_form_a_valid_chain() -> None:
    records = _chain()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.record_hash for a, b in itertools.pairwise(records))
    assert _verify(records) is None


def test_an_edited_field_is_detected() -> None:
    records = _chain()
    records[2].patient_id = "999"
    broken = _verify(records)
    assert broken is not None
    assert (broken.seq, broken.record_id, broken.problem) == (3, 1003, "hash_mismatch")


def test_an_edited_field_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = _chain()
    records[2].patient_id = "999"
    fields = {name: getattr(records[2], name) for name in HASHED_FIELDS}
    records[2].record_hash = compute_hash(fields, records[2].prev_hash)
    broken = _verify(records)
    assert broken is not None
    assert (broken.seq, broken.problem) == (4, "prev_hash_mismatch")


def test_a_deleted_row_is_detected() -> None:
    records = _chain()
    del records[1]
    broken = _verify(records)
    assert broken is not None
    assert (broken.seq, broken.problem) == (3, "seq_gap")


def test_reordered_rows_are_detected() -> None:
    records = _chain()
    records[1].seq, records[2].seq = records[2].seq, records[1].seq
    records.sort(key=lambda r: r.seq)
    broken = _verify(records)
    assert broken is not None
    assert broken.seq == 2
    assert broken.problem in {"prev_hash_mismatch", "hash_mismatch"}


def test_a_row_moved_to_another_tenant_is_detected() -> None:
    records = _chain()
    records[0].tenant = "t-two"
    broken = _verify(records)
    assert broken is not None
    assert broken.problem == "tenant_mismatch"


def _relinked(records: list[AuditRecord]) -> None:
    """Recompute every hash and link, as someone rewriting a chain consistently would."""
    prev_hash = GENESIS_HASH
    for record in records:
        record.prev_hash = prev_hash
        fields = {name: getattr(record, name) for name in HASHED_FIELDS}
        record.record_hash = compute_hash(fields, prev_hash)
        prev_hash = record.record_hash


def _verify_pinned(
    records: list[AuditRecord], pins: dict[int, tuple[str, int]]
) -> ChainBreak | None:
    verifier = ChainVerifier("t-one", 0, pins)
    for record in records:
        broken = verifier.check(record)
        if broken is not None:
            return broken
    return verifier.finish()


def test_a_consistently_rewritten_chain_is_caught_by_a_checkpoint() -> None:
    records = _chain()
    signed = {5: (records[4].record_hash, 2)}  # checkpoint 2 signed the head, seq 5
    records[2].patient_id = "999"
    _relinked(records)
    assert _verify(records) is None  # the chain alone holds
    broken = _verify_pinned(records, signed)
    assert broken is not None
    assert (broken.seq, broken.problem, broken.checkpoint) == (5, "checkpoint_mismatch", 2)


def test_a_truncated_chain_is_caught_by_a_checkpoint() -> None:
    records = _chain()
    signed = {3: (records[2].record_hash, 1), 5: (records[4].record_hash, 2)}
    assert _verify_pinned(records, signed) is None
    broken = _verify_pinned(records[:4], signed)
    assert broken is not None
    assert (broken.shard, broken.seq, broken.record_id, broken.problem, broken.checkpoint) == (
        0,
        5,
        None,
        "missing_after_checkpoint",
        2,
    )
    assert broken.describe().startswith(
        "tenant=t-one shard=0 seq=5 checkpoint=2: missing_after_checkpoint"
    )


def test_a_record_moved_to_another_shard_breaks_both_chains() -> None:
    # Why the shard need not be hashed: a record's chain is fixed by its links.
    first = _chain(5)
    second = link_entries(
        [patient_read("t-one", f"x-{i}", occurred_at=WHEN) for i in range(3)],
        last_seq=0,
        last_hash=GENESIS_HASH,
        now=WHEN,
        shard=7,
    )
    moved = first.pop(2)
    moved.shard, moved.seq = 7, 4
    second.append(moved)
    broken_first = _verify(first)
    assert broken_first is not None
    assert (broken_first.seq, broken_first.problem) == (4, "seq_gap")
    verifier = ChainVerifier("t-one", 7)
    broken_second = next(b for b in map(verifier.check, second) if b is not None)
    assert (broken_second.shard, broken_second.seq, broken_second.problem) == (
        7,
        4,
        "prev_hash_mismatch",
    )


def test_linking_puts_records_on_the_shard_without_changing_their_hash() -> None:
    entries = [patient_read("t-one", "1", occurred_at=WHEN)]
    (on_zero,) = link_entries(entries, last_seq=0, last_hash=GENESIS_HASH, now=WHEN)
    (on_nine,) = link_entries(entries, last_seq=0, last_hash=GENESIS_HASH, now=WHEN, shard=9)
    assert (on_zero.shard, on_nine.shard) == (0, 9)
    assert on_zero.record_hash == on_nine.record_hash
