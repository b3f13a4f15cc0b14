"""Tenant note templates: what a PUT may hold, the shipped keys a tenant cannot take, and a
note drafted from a tenant template (type, sections, co-signature rule)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from ehr.core.db.models import NoteTemplate
from ehr.core.errors import AppError
from ehr.modules.notes.documents import Signer, to_summary
from ehr.modules.notes.lifecycle import draft_note
from ehr.modules.notes.schemas import NoteCreate, NoteTemplateIn
from ehr.modules.notes.template_store import check_template, definition_of

NOW = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
AUTHOR = Signer(user_id="u-1", display="Dr One")


def _template(**fields: object) -> NoteTemplateIn:
    body: dict[str, object] = {
        "title": "Cardiology consult",
        "type_code": "11488-4",
        "sections": ["Reason for consult", "Findings", "Recommendations"],
        **fields,
    }
    return NoteTemplateIn.model_validate(body)


def test_a_valid_template_gets_loincs_display() -> None:
    assert check_template("cardio-consult", _template()) == "Consult note"


@pytest.mark.parametrize("key", ["soap", "progress", "history-and-physical", "discharge-summary"])
def test_a_shipped_key_is_reserved(key: str) -> None:
    with pytest.raises(AppError) as refused:
        check_template(key, _template())
    assert refused.value.status_code == 409
    assert refused.value.code == "note_template_key_reserved"


def test_a_loinc_code_outside_the_note_types_is_refused() -> None:
    with pytest.raises(AppError) as refused:
        check_template("x", _template(type_code="2345-7"))  # glucose: not a note type
    assert refused.value.status_code == 422
    assert refused.value.code == "note_template_invalid"


def test_repeated_sections_are_refused() -> None:
    with pytest.raises(AppError) as refused:
        check_template("x", _template(sections=["Plan", "plan"]))
    assert refused.value.code == "note_template_invalid"


@pytest.mark.parametrize(
    "fields",
    [
        {"type_code": "11488"},
        {"type_code": "abc-1"},
        {"sections": []},
        {"sections": ["x" * 121]},
        {"sections": [f"s{i}" for i in range(41)]},
        {"sections": ["  "]},
        {"title": ""},
        {"title": "t" * 201},
        {"colour": "red"},
    ],
)
def test_a_template_out_of_bounds_is_a_validation_error(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _template(**fields)


def test_a_note_from_a_tenant_template_has_its_type_sections_and_cosign_rule() -> None:
    row = NoteTemplate(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        key="cardio-consult",
        title="Cardiology consult",
        type_code="11488-4",
        type_display="Consult note",
        sections=["Reason for consult", "Recommendations"],
        requires_cosign=True,
        created_by="user:x",
        updated_by="user:x",
    )
    template = definition_of(row)
    assert template.shipped is False
    payload = NoteCreate(kind="cardio-consult")
    note = {**draft_note("p1", payload, AUTHOR, NOW, template=template), "id": "n1"}
    summary = to_summary(note, "p1")
    assert summary.kind == "cardio-consult"
    assert summary.type_code == "11488-4"
    assert summary.type_display == "Consult note"
    assert summary.requires_cosign is True
    assert summary.text is not None
    assert "## Reason for consult" in summary.text


def test_an_unknown_kind_without_a_template_is_refused() -> None:
    with pytest.raises(AppError) as refused:
        draft_note("p1", NoteCreate(kind="no-such"), AUTHOR, NOW)
    assert refused.value.code == "note_template_unknown"
    with pytest.raises(ValidationError):
        NoteCreate(kind="Not A Key!")
