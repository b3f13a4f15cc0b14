"""Request and response documents of the notes API (our own shapes, not the DocumentReference)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.modules import clinical_record

__all__ = [
    "ContentType",
    "NoteAddendum",
    "NoteAmend",
    "NoteCreate",
    "NoteId",
    "NoteList",
    "NotePerson",
    "NoteRelation",
    "NoteSignatureRecord",
    "NoteSummary",
    "NoteTemplate",
    "NoteTemplateAdmin",
    "NoteTemplateAdminList",
    "NoteTemplateIn",
    "NoteTemplateKey",
    "NoteTemplateList",
    "NoteUpdate",
    "TemplateKey",
]

ContentType = Literal["text/plain", "text/markdown"]

NoteId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64, description="The note's id."),
]
# A note's text: up to 256 KiB of characters (the body limit applies first).
_Text = Annotated[str, StringConstraints(min_length=1, max_length=262_144)]
_Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)]
_KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
# A template's key: a shipped one (progress, soap, ...) or a tenant's own.
TemplateKey = Annotated[str, StringConstraints(pattern=_KEY_PATTERN, max_length=64)]
NoteTemplateKey = Annotated[
    str,
    Path(pattern=_KEY_PATTERN, max_length=64, description="The template's key (a-z, 0-9, -)."),
]
_Section = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
_LoincCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,7}-[0-9]$", max_length=9)]


class NoteCreate(BaseModel):
    """A new draft note from a template; the text defaults to the template's skeleton."""

    model_config = ConfigDict(extra="forbid")

    kind: TemplateKey = Field(
        description="The template: progress, soap, history-and-physical, discharge-summary, "
        "or one of the tenant's own (GET .../notes/templates)."
    )
    content_type: ContentType = "text/markdown"
    text: _Text | None = None
    title: _Title | None = None
    encounter_id: _FhirId | None = Field(default=None, description="This patient's Encounter.")
    requires_cosign: bool = Field(
        default=False,
        description="A second physician must co-sign before the note is complete (also when "
        "the template requires it).",
    )


class NoteUpdate(BaseModel):
    """A draft's new text (and title); a signed note cannot be updated (amend it)."""

    model_config = ConfigDict(extra="forbid")

    text: _Text
    content_type: ContentType | None = None
    title: _Title | None = None


class NoteAmend(BaseModel):
    """The amended text: a new note that replaces the signed one (signed by the amender)."""

    model_config = ConfigDict(extra="forbid")

    text: _Text
    content_type: ContentType | None = None
    title: _Title | None = None


class NoteAddendum(BaseModel):
    """An addendum to a signed note: a new draft note that appends to it."""

    model_config = ConfigDict(extra="forbid")

    text: _Text
    content_type: ContentType = "text/markdown"
    title: _Title | None = None


class NotePerson(clinical_record.Recorder):
    """A user who wrote, signed or co-signed a note (read like every chart record's recorder)."""


class NoteRelation(BaseModel):
    """A relation to another note: ``replaces`` (amendment) or ``appends`` (addendum)."""

    code: str
    note_id: str | None


class NoteSignatureRecord(BaseModel):
    """One Provenance of the note: a signature act (or the writing of an addendum)."""

    activity: str | None = Field(description="v3-DataOperation: CREATE or UPDATE.")
    role: str | None = Field(description="author, attester or verifier.")
    signature_type: str | None = Field(
        default=None, description="urn:iso-astm:E1762-95:2013 code; null when not a signature."
    )
    signature_display: str | None = None
    who: NotePerson | None = None
    recorded: str | None = None


class NoteSummary(BaseModel):
    """What the business API shows of a note."""

    id: str
    version: str | None = Field(description="meta.versionId; send it back in If-Match.")
    patient_id: str
    kind: str | None = None
    type_code: str | None = Field(default=None, description="LOINC document type.")
    type_display: str | None = None
    title: str | None = None
    status: str = Field(description="current, superseded or entered-in-error.")
    doc_status: str | None = Field(default=None, description="preliminary, final or amended.")
    content_type: str | None = None
    text: str | None = None
    encounter_id: str | None = None
    date: str | None = None
    author: NotePerson | None = None
    authenticator: NotePerson | None = None
    signed_at: str | None = None
    requires_cosign: bool = False
    cosigner: NotePerson | None = None
    cosigned_at: str | None = None
    complete: bool = Field(description="Signed, and co-signed when it requires co-signature.")
    relates_to: list[NoteRelation] = Field(default_factory=list)
    provenance: list[NoteSignatureRecord] | None = Field(
        default=None, description="The note's signature records, oldest first (on read only)."
    )


class NoteList(BaseModel):
    """A page of a patient's notes, newest first (date, then id)."""

    items: list[NoteSummary]
    next: str | None = Field(
        default=None, description="Send as `cursor` for the next page; null on the last page."
    )


class NoteTemplate(BaseModel):
    """A note template a clinician may start a note from (shipped or the tenant's own)."""

    kind: str
    title: str
    type_code: str
    type_display: str
    sections: list[str]
    requires_cosign: bool = False
    shipped: bool = Field(default=True, description="False for the tenant's own template.")
    skeleton: str = Field(description="The sections as empty markdown.")


class NoteTemplateList(BaseModel):
    """The templates a note may start from."""

    items: list[NoteTemplate]


class NoteTemplateIn(BaseModel):
    """A tenant's template (PUT replaces it whole). ``type_code`` is one of the allowed LOINC
    note types; its display is LOINC's, set by the server."""

    model_config = ConfigDict(extra="forbid")

    title: _Title
    type_code: _LoincCode = Field(description="LOINC document type, e.g. 11488-4 (consult).")
    sections: list[_Section] = Field(min_length=1, max_length=40)
    requires_cosign: bool = False


class NoteTemplateAdmin(BaseModel):
    """A tenant's template as its administrators see it."""

    key: str
    title: str
    type_code: str
    type_display: str
    sections: list[str]
    requires_cosign: bool
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str


class NoteTemplateAdminList(BaseModel):
    """The tenant's own templates, by key."""

    items: list[NoteTemplateAdmin]
