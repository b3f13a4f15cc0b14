"""The clinical record's shared rules without HAPI: the refusals and their stable codes, the
If-Match checks, the patient gate's break-glass bookkeeping and audit note, the recorder, and
the entered-in-error marking every verification-status kind uses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from ehr.fhir import FhirPreconditionFailed
from ehr.modules.clinical_record import (
    USER_SYSTEM,
    DateInFuture,
    IfMatchRequired,
    InvalidListCursor,
    ListCursors,
    PatientGate,
    PatientMismatch,
    SortKey,
    check_body_patient,
    check_not_in_future,
    check_version,
    entry_visibility,
    is_entered_in_error,
    is_snomed_ct_concept,
    mark_verification_entered_in_error,
    newest_first,
    page_of,
    recorder_of,
    recorder_reference,
    require_if_match,
    user_of,
)
from ehr.modules.clinical_record.codes import verhoeff_ok
from ehr.platform.auth.authorization import (
    CONFIDENTIALITY_SYSTEM,
    BreakGlassRequest,
    BreakGlassRequired,
)
from ehr.platform.auth.principal import Principal

TODAY = dt.date(2026, 12, 7)
RESTRICTED = {"meta": {"security": [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]}}


def _principal(role: str = "physician") -> Principal:
    return Principal(
        kind="user",
        subject=uuid.UUID(int=7),
        tenant="t",
        tenant_id=uuid.uuid4(),
        roles=frozenset({role}),
        username="dr.who",
    )


def test_refusals_keep_their_stable_codes() -> None:
    assert (PatientMismatch.code, PatientMismatch.status_code) == ("patient_mismatch", 422)
    assert (DateInFuture.code, DateInFuture.status_code) == ("date_in_future", 422)
    assert (IfMatchRequired.code, IfMatchRequired.status_code) == ("if_match_required", 428)


def test_body_patient_must_be_the_paths() -> None:
    check_body_patient(None, "p1")
    check_body_patient("p1", "p1")
    with pytest.raises(PatientMismatch):
        check_body_patient("p2", "p1")


def test_a_date_after_tomorrow_utc_is_in_the_future() -> None:
    check_not_in_future("onset", None, today=TODAY)
    check_not_in_future("onset", TODAY + dt.timedelta(days=1), today=TODAY)
    with pytest.raises(DateInFuture) as caught:
        check_not_in_future("abatement", TODAY + dt.timedelta(days=2), today=TODAY)
    assert caught.value.extra == {"field": "abatement"}


def test_if_match_is_required_under_one_code() -> None:
    assert require_if_match('W/"3"') == 'W/"3"'
    with pytest.raises(IfMatchRequired) as caught:
        require_if_match(None)
    assert (caught.value.status_code, caught.value.code) == (428, "if_match_required")


@pytest.mark.parametrize("tag", ["3", '"3"', 'W/"3"', ' W/"3" '])
def test_the_current_version_passes_in_any_etag_spelling(tag: str) -> None:
    check_version({"meta": {"versionId": "3"}}, tag, detail="x")


def test_a_stale_version_is_412_naming_the_current_one() -> None:
    with pytest.raises(FhirPreconditionFailed) as caught:
        check_version({"meta": {"versionId": "4"}}, 'W/"3"', detail="The problem changed")
    assert caught.value.extra == {"current_version": "4"}
    assert caught.value.detail == "The problem changed"


def test_a_resource_without_version_passes_unless_strict() -> None:
    check_version({}, "3", detail="x")
    with pytest.raises(FhirPreconditionFailed):
        check_version({}, "3", detail="x", strict=True)


def test_snomed_concept_ids_carry_a_verhoeff_digit() -> None:
    assert is_snomed_ct_concept("73211009")  # diabetes mellitus
    assert not is_snomed_ct_concept("73211008")  # one digit off
    assert verhoeff_ok("2363")
    assert not verhoeff_ok("2364")


def test_the_recorder_goes_out_and_comes_back() -> None:
    reference = recorder_reference(_principal())
    assert reference == {
        "identifier": {"system": USER_SYSTEM, "value": str(uuid.UUID(int=7))},
        "display": "dr.who",
    }
    shown = recorder_of({"recorder": reference})
    assert shown is not None
    assert (shown.user_id, shown.display) == (str(uuid.UUID(int=7)), "dr.who")
    assert recorder_of({}) is None


def test_any_user_reference_reads_like_the_recorder() -> None:
    author = user_of({"identifier": {"system": USER_SYSTEM, "value": "u-1"}})
    assert author is not None
    assert (author.user_id, author.display) == ("u-1", None)
    assert user_of("Practitioner/1") is None


def test_entered_in_error_is_a_status_or_a_verification_status() -> None:
    assert is_entered_in_error({"status": "entered-in-error"})
    assert is_entered_in_error({"verificationStatus": {"coding": [{"code": "entered-in-error"}]}})
    assert not is_entered_in_error({"status": "final"})


def _gate(reason: str | None, role: str = "physician") -> PatientGate:
    return PatientGate(
        "p1", {"resourceType": "Patient"}, _principal(role), BreakGlassRequest(reason)
    )


def test_restricted_entries_are_withheld_without_break_glass() -> None:
    entries: list[dict[str, Any]] = [{"id": "a"}, {"id": "b", **RESTRICTED}]
    shown, gate = _gate(None).shown(entries)
    assert [e["id"] for e in shown] == ["a"]
    assert gate.break_glass is None


def test_break_glass_shows_restricted_entries_and_is_remembered() -> None:
    reason = "Unconscious patient in the emergency room"
    entries: list[dict[str, Any]] = [{"id": "a"}, {"id": "b", **RESTRICTED}]
    shown, gate = _gate(reason).shown(entries)
    assert [e["id"] for e in shown] == ["a", "b"]
    assert gate.break_glass is not None
    assert gate.break_glass.reason == reason
    assert entry_visibility(_principal(), BreakGlassRequest(reason))(RESTRICTED)


def test_admitting_a_restricted_entry_needs_break_glass() -> None:
    with pytest.raises(BreakGlassRequired):
        _gate(None).admit(RESTRICTED)
    admitted = _gate("Unconscious patient in the emergency room").admit(RESTRICTED)
    assert admitted.opened_by_break_glass


class _Audit:
    def __init__(self) -> None:
        self.notes: list[tuple[str, dict[str, Any]]] = []

    def access(self, action: str, **fields: Any) -> None:
        self.notes.append((action, fields))


def test_the_audit_note_names_the_patient_and_the_break_glass_use() -> None:
    audit = _Audit()
    gate = _gate("Unconscious patient in the emergency room").admit(RESTRICTED)
    gate.note(audit, "problem:read", resource_type="Condition", resource_id="c1")  # type: ignore[arg-type]
    assert audit.notes == [
        (
            "problem:read",
            {
                "resource_type": "Condition",
                "resource_id": "c1",
                "patient_id": "p1",
                "details": None,
                "break_glass": True,
                "break_glass_reason": "Unconscious patient in the emergency room",
            },
        )
    ]


class _Fhir:
    def __init__(self) -> None:
        self.updates: list[tuple[dict[str, Any], str | None]] = []

    async def update(self, resource: dict[str, Any], *, if_match: str | None) -> dict[str, Any]:
        self.updates.append((resource, if_match))
        return {**resource, "meta": {"versionId": "4"}}


async def test_marking_entered_in_error_drops_the_clinical_status_in_one_versioned_update() -> None:
    fhir = _Fhir()
    current = {
        "id": "c1",
        "meta": {"versionId": "3"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
    }
    stored, changed = await mark_verification_entered_in_error(
        fhir,  # type: ignore[arg-type]
        current,
        if_match=None,
        verification_system="urn:vs",
        stale_detail="stale",
    )
    assert changed
    sent, version = fhir.updates[0]
    assert version == "3"
    assert "clinicalStatus" not in sent
    assert sent["verificationStatus"] == {
        "coding": [{"system": "urn:vs", "code": "entered-in-error"}]
    }
    again, changed_again = await mark_verification_entered_in_error(
        fhir,  # type: ignore[arg-type]
        stored,
        if_match=None,
        verification_system="urn:vs",
        stale_detail="stale",
    )
    assert (again, changed_again, len(fhir.updates)) == (stored, False, 1)


async def test_marking_with_a_stale_if_match_sends_nothing() -> None:
    fhir = _Fhir()
    with pytest.raises(FhirPreconditionFailed):
        await mark_verification_entered_in_error(
            fhir,  # type: ignore[arg-type]
            {"meta": {"versionId": "5"}, "verificationStatus": {"coding": [{"code": "confirmed"}]}},
            if_match='W/"3"',
            verification_system="urn:vs",
            stale_detail="stale",
        )
    assert fhir.updates == []


def test_a_list_pages_by_position_and_ends_without_next() -> None:
    items = [{"id": i, "at": f"2026-12-0{i}"} for i in range(1, 6)]

    def key(item: dict[str, Any]) -> SortKey:
        return (*newest_first(item["at"]), str(item["id"]))

    first, last = page_of(items, key, limit=2, after=None)
    assert [i["id"] for i in first] == [5, 4]
    assert last is not None
    second, last = page_of(items, key, limit=2, after=last)
    assert [i["id"] for i in second] == [3, 2]
    assert last is not None
    third, end = page_of(items, key, limit=2, after=last)
    assert ([i["id"] for i in third], end) == ([1], None)


def test_an_entry_recorded_while_paging_does_not_shift_the_next_page() -> None:
    items = [{"id": i, "at": f"2026-12-0{i}"} for i in range(1, 6)]

    def key(item: dict[str, Any]) -> SortKey:
        return (*newest_first(item["at"]), str(item["id"]))

    _, last = page_of(items, key, limit=2, after=None)
    newer = [*items, {"id": 9, "at": "2026-12-09"}]
    second, _ = page_of(newer, key, limit=2, after=last)
    assert [i["id"] for i in second] == [3, 2]


def test_undated_entries_sort_after_dated_ones() -> None:
    assert newest_first(None) > newest_first("1900-01-01")
    assert newest_first("2026-12-07") < newest_first("2026-12-06")


def test_a_cursor_opens_only_for_its_tenant_patient_and_filters() -> None:
    cursors = ListCursors(b"k" * 32, "tenant-a")
    cursor = cursors.seal("problems|active|0", "p1", (0, 0, -5, "c1"))
    assert cursors.open("problems|active|0", "p1", cursor) == (0, 0, -5, "c1")
    for other, scope, patient in (
        (ListCursors(b"k" * 32, "tenant-b"), "problems|active|0", "p1"),
        (cursors, "problems|active|0", "p2"),
        (cursors, "problems||0", "p1"),
    ):
        with pytest.raises(InvalidListCursor):
            other.open(scope, patient, cursor)
    with pytest.raises(InvalidListCursor):
        cursors.open("problems|active|0", "p1", "not-a-cursor")


def test_cursors_page_a_list_to_its_end() -> None:
    cursors = ListCursors(b"k" * 32, "tenant-a")
    items = [{"id": str(i)} for i in range(5)]

    def key(item: dict[str, str]) -> SortKey:
        return (item["id"],)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = cursors.page("encounters|", "p1", items, key, limit=2, cursor=cursor)
        seen += [i["id"] for i in page]
        if cursor is None:
            break
    assert seen == ["0", "1", "2", "3", "4"]


def test_ties_of_the_clinical_date_put_the_newest_written_first() -> None:
    from ehr.modules.clinical_record import newest_written_first

    older = {"meta": {"lastUpdated": "2026-12-07T07:38:04.705+00:00"}}
    newer = {"meta": {"lastUpdated": "2026-12-07T07:38:04.885+00:00"}}
    assert newest_written_first(newer) < newest_written_first(older)
    assert newest_written_first({}) > newest_written_first(older)  # unknown: last
