"""Note lifecycle rules: draft → signed → amended, addenda, co-signature, patient visibility."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from ehr.core.errors import AppError
from ehr.modules.notes.documents import EXT_SIGNED_AT, Signer, is_released, to_summary
from ehr.modules.notes.lifecycle import (
    addendum_of,
    amendment_of,
    check_draft,
    cosigned,
    draft_note,
    entered_in_error,
    signed,
    updated_draft,
)
from ehr.modules.notes.provenance import SignatureAct, note_provenance, signature_record
from ehr.modules.notes.schemas import NoteAddendum, NoteAmend, NoteCreate, NoteUpdate

NOW = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
RESIDENT = Signer(user_id="u-resident", display="Dr Resident")
ATTENDING = Signer(user_id="u-attending", display="Dr Attending")


def _stored(resource: dict[str, Any], note_id: str = "n1", version: str = "1") -> dict[str, Any]:
    return {**resource, "id": note_id, "meta": {"versionId": version}}


def _draft(**fields: Any) -> dict[str, Any]:
    payload = NoteCreate.model_validate({"kind": "soap", **fields})
    return _stored(draft_note("p1", payload, RESIDENT, NOW))


def test_a_draft_from_the_soap_template_is_a_preliminary_progress_note() -> None:
    note = _draft()
    assert note["docStatus"] == "preliminary"
    assert note["status"] == "current"
    assert note["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11506-3",
        "display": "Progress note",
    }
    assert note["category"][0]["coding"][0]["code"] == "clinical-note"
    assert note["subject"] == {"reference": "Patient/p1"}
    summary = to_summary(note, "p1")
    assert summary.kind == "soap"
    assert summary.text is not None
    assert "## Subjective" in summary.text
    assert "## Plan" in summary.text
    assert summary.author is not None
    assert summary.author.user_id == "u-resident"
    assert summary.complete is False


@pytest.mark.parametrize(
    ("kind", "loinc"),
    [
        ("history-and-physical", "34117-2"),
        ("discharge-summary", "18842-5"),
        ("progress", "11506-3"),
    ],
)
def test_each_template_has_its_loinc_type(kind: str, loinc: str) -> None:
    assert _draft(kind=kind)["type"]["coding"][0]["code"] == loinc


def test_the_text_is_base64_in_the_attachment_with_its_content_type() -> None:
    note = _draft(text="Plain words", content_type="text/plain")
    attachment = note["content"][0]["attachment"]
    assert attachment["contentType"].startswith("text/plain")
    assert base64.b64decode(attachment["data"]).decode() == "Plain words"
    assert to_summary(note, "p1").content_type == "text/plain"


def test_signing_a_draft_sets_final_the_authenticator_and_the_time() -> None:
    note = signed(_draft(), ATTENDING, NOW)
    summary = to_summary(note, "p1")
    assert summary.doc_status == "final"
    assert summary.authenticator is not None
    assert summary.authenticator.user_id == "u-attending"
    assert summary.signed_at == "2026-03-01T10:00:00Z"
    assert summary.complete is True


def test_a_signed_note_cannot_be_updated_or_signed_again() -> None:
    note = _stored(signed(_draft(), ATTENDING, NOW))
    with pytest.raises(AppError) as caught:
        updated_draft(note, NoteUpdate(text="changed"), RESIDENT)
    assert getattr(caught.value, "code", None) == "note_signed_immutable"
    assert getattr(caught.value, "status_code", None) == 409
    with pytest.raises(AppError) as again:
        signed(note, ATTENDING, NOW)
    assert getattr(again.value, "code", None) == "note_signed_immutable"


def test_a_draft_update_replaces_the_text_only() -> None:
    note = updated_draft(_draft(), NoteUpdate(text="S: better"), RESIDENT)
    assert to_summary(note, "p1").text == "S: better"
    check_draft(note)


def test_a_draft_is_changed_and_withdrawn_by_its_author_only() -> None:
    draft = _draft()
    for change in (
        lambda: updated_draft(draft, NoteUpdate(text="not mine"), ATTENDING),
        lambda: entered_in_error(draft, ATTENDING, may_sign=True),
    ):
        with pytest.raises(AppError) as refused:
            change()
        assert refused.value.status_code == 403
        assert refused.value.code == "note_not_author"
    authorless = {key: value for key, value in draft.items() if key != "author"}
    with pytest.raises(AppError) as nobody:
        updated_draft(authorless, NoteUpdate(text="x"), RESIDENT)
    assert nobody.value.code == "note_not_author"
    # A signed note is withdrawn by any physician (note:sign), not only its author.
    final = _stored(signed(draft, RESIDENT, NOW))
    assert entered_in_error(final, ATTENDING, may_sign=True)["status"] == "entered-in-error"


def test_an_amendment_is_a_new_signed_note_and_the_old_one_is_only_superseded() -> None:
    old = _stored(signed(_draft(text="original"), ATTENDING, NOW))
    later = NOW + dt.timedelta(hours=1)
    new, superseded = amendment_of(old, NoteAmend(text="corrected"), ATTENDING, later)
    assert "id" not in new
    assert new["docStatus"] == "amended"
    assert new["relatesTo"] == [
        {"code": "replaces", "target": {"reference": "DocumentReference/n1"}}
    ]
    assert {"url": EXT_SIGNED_AT, "valueDateTime": "2026-03-01T11:00:00Z"} in new["extension"]
    assert to_summary(_stored(new, "n2"), "p1").text == "corrected"
    assert superseded["status"] == "superseded"
    assert superseded["content"] == old["content"]
    assert superseded["docStatus"] == "final"


def test_a_draft_or_a_superseded_note_cannot_be_amended() -> None:
    with pytest.raises(AppError) as draft:
        amendment_of(_draft(), NoteAmend(text="x"), ATTENDING, NOW)
    assert getattr(draft.value, "code", None) == "note_not_signed"
    old = _stored(signed(_draft(), ATTENDING, NOW))
    _, superseded = amendment_of(old, NoteAmend(text="x"), ATTENDING, NOW)
    with pytest.raises(AppError) as stale:
        amendment_of(superseded, NoteAmend(text="y"), ATTENDING, NOW)
    assert getattr(stale.value, "code", None) == "note_not_current"


def test_an_addendum_is_a_new_draft_that_appends() -> None:
    target = _stored(signed(_draft(), ATTENDING, NOW))
    addendum = addendum_of(target, NoteAddendum(text="Labs came back"), RESIDENT, NOW)
    assert addendum["docStatus"] == "preliminary"
    assert addendum["relatesTo"][0]["code"] == "appends"
    assert addendum["subject"] == target["subject"]


def test_cosign_needs_a_note_that_requires_it_and_another_physician() -> None:
    note = _stored(signed(_draft(requires_cosign=True), RESIDENT, NOW))
    assert to_summary(note, "p1").complete is False
    with pytest.raises(AppError) as same:
        cosigned(note, RESIDENT, NOW)
    assert getattr(same.value, "extra", {}).get("reason") == "cosigner_is_signer"
    done = _stored(cosigned(note, ATTENDING, NOW))
    summary = to_summary(done, "p1")
    assert summary.complete is True
    assert summary.cosigner is not None
    assert summary.cosigner.user_id == "u-attending"
    with pytest.raises(AppError) as twice:
        cosigned(done, ATTENDING, NOW)
    assert getattr(twice.value, "extra", {}).get("reason") == "already_cosigned"
    plain = _stored(signed(_draft(), RESIDENT, NOW))
    with pytest.raises(AppError) as unneeded:
        cosigned(plain, ATTENDING, NOW)
    assert getattr(unneeded.value, "code", None) == "note_cosign_not_allowed"


def test_a_draft_cannot_be_cosigned() -> None:
    with pytest.raises(AppError) as caught:
        cosigned(_draft(requires_cosign=True), ATTENDING, NOW)
    assert getattr(caught.value, "code", None) == "note_not_signed"


def test_patients_see_signed_notes_only() -> None:
    draft = _draft()
    final = signed(draft, ATTENDING, NOW)
    assert not is_released(draft)
    assert is_released(final)
    assert not is_released({**final, "status": "entered-in-error"})


def test_entered_in_error_keeps_the_content_and_needs_note_sign_once_signed() -> None:
    draft = _draft(text="wrong chart")
    withdrawn = entered_in_error(draft, RESIDENT, may_sign=False)
    assert withdrawn["status"] == "entered-in-error"
    assert withdrawn["content"] == draft["content"]
    final = _stored(signed(_draft(), ATTENDING, NOW))
    with pytest.raises(AppError) as nurse:
        entered_in_error(final, RESIDENT, may_sign=False)
    assert nurse.value.status_code == 403
    assert nurse.value.code == "note_sign_required"
    assert entered_in_error(final, RESIDENT, may_sign=True)["status"] == "entered-in-error"
    with pytest.raises(AppError) as twice:
        entered_in_error(withdrawn, RESIDENT, may_sign=True)
    assert twice.value.code == "note_not_current"


def test_an_amendment_of_a_note_that_needs_cosign_needs_it_again() -> None:
    old = _stored(
        cosigned(_stored(signed(_draft(requires_cosign=True), RESIDENT, NOW)), ATTENDING, NOW)
    )
    new, _ = amendment_of(old, NoteAmend(text="fixed"), RESIDENT, NOW)
    summary = to_summary(_stored(new, "n2"), "p1")
    assert summary.requires_cosign is True
    assert summary.cosigner is None
    assert summary.complete is False


@pytest.mark.parametrize(
    ("act", "agent", "signature"),
    [
        ("sign", "attester", "1.2.840.10065.1.12.1.1"),
        ("sign-addendum", "attester", "1.2.840.10065.1.12.1.15"),
        ("cosign", "verifier", "1.2.840.10065.1.12.1.5"),
        ("amend", "author", "1.2.840.10065.1.12.1.16"),
    ],
)
def test_each_signature_act_has_its_provenance(
    act: SignatureAct, agent: str, signature: str
) -> None:
    record = note_provenance(act, "DocumentReference/n1", ATTENDING, NOW)
    assert record["resourceType"] == "Provenance"
    assert record["target"] == [{"reference": "DocumentReference/n1"}]
    assert record["recorded"] == "2026-03-01T10:00:00Z"
    assert record["agent"][0]["type"]["coding"][0]["code"] == agent
    assert record["agent"][0]["who"] == ATTENDING.reference()
    (sig,) = record["signature"]
    assert sig["type"][0]["code"] == signature
    assert sig["type"][0]["system"] == "urn:iso-astm:E1762-95:2013"
    assert sig["when"] == "2026-03-01T10:00:00Z"
    assert sig["who"] == ATTENDING.reference()
    assert "data" not in sig
    assert "sigFormat" not in sig


def test_an_addendum_written_is_recorded_without_a_signature() -> None:
    record = note_provenance(
        "addendum", "urn:uuid:x", RESIDENT, NOW, related="DocumentReference/n1"
    )
    assert "signature" not in record
    assert record["activity"]["coding"][0]["code"] == "CREATE"
    assert record["entity"] == [{"role": "source", "what": {"reference": "DocumentReference/n1"}}]


def test_a_provenance_is_shown_as_a_signature_record() -> None:
    shown = signature_record(note_provenance("cosign", "DocumentReference/n1", ATTENDING, NOW))
    assert shown.activity == "UPDATE"
    assert shown.role == "verifier"
    assert shown.signature_type == "1.2.840.10065.1.12.1.5"
    assert shown.signature_display == "Verification Signature"
    assert shown.who is not None
    assert shown.who.user_id == "u-attending"
    assert shown.recorded == "2026-03-01T10:00:00Z"
    assert signature_record({"resourceType": "Provenance"}).role is None
