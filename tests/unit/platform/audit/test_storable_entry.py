"""Whatever a caller sent, the audit record can be stored: storable_entry."""

from __future__ import annotations

import datetime as dt

from ehr.platform.audit.chain import ALTERED_MEMBER, AuditEntry, link_entries, storable_entry


def _entry(**values: object) -> AuditEntry:
    return AuditEntry(tenant="t", actor_type="user", action="cds:order-sign", outcome="success",
                      **values)  # type: ignore[arg-type]  # fmt: skip


def test_a_clean_entry_is_unchanged() -> None:
    entry = _entry(patient_id="123", details={"service": "order-sign", "cards": 2})
    assert storable_entry(entry) is entry


def test_unstorable_text_is_replaced_and_the_record_says_so() -> None:
    entry = _entry(
        patient_id="\ud800",
        resource_id="a\x00b",
        details={"hook_instance": "x\udc00", "nested": {"k\x00": ["ok", "\x00"]}},
    )
    stored = storable_entry(entry)
    assert stored.patient_id == "\ufffd"
    assert stored.resource_id == "a\ufffdb"
    assert stored.details is not None
    assert stored.details["hook_instance"] == "x\ufffd"
    assert stored.details["nested"] == {"k\ufffd": ["ok", "\ufffd"]}
    assert stored.details[ALTERED_MEMBER] == sorted(
        [
            "details.hook_instance",
            "details.nested.k\ufffd",
            "details.nested.k\ufffd[1]",
            "patient_id",
            "resource_id",
        ]
    )
    # Storable: every text encodes as UTF-8 without NUL.
    for record in link_entries(
        [entry], last_seq=0, last_hash="0" * 64, now=dt.datetime.now(dt.UTC)
    ):
        assert record.patient_id == "\ufffd"
        assert "\x00" not in str(record.details)
        str(record.details).encode("utf-8")


def test_text_longer_than_its_column_is_clipped() -> None:
    stored = storable_entry(_entry(patient_id="p" * 500, user_agent="u" * 2000))
    assert stored.patient_id == "p" * 64
    assert stored.user_agent == "u" * 512
    assert stored.details == {ALTERED_MEMBER: ["patient_id", "user_agent"]}
