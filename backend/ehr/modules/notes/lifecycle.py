"""The note lifecycle as pure transitions of a DocumentReference (no I/O; the service writes).

- a draft is ``docStatus`` ``preliminary`` and its author's (another user → 403
  ``note_not_author``); only drafts change (a signed note → 409 ``note_signed_immutable``);
- signing sets ``docStatus`` ``final``, the ``authenticator`` and the sign time (extension
  ``EXT_SIGNED_AT``);
- an amendment is a NEW DocumentReference (``docStatus`` ``amended``, signed by the amender,
  ``relatesTo`` ``replaces`` the old one); the old one only turns ``superseded`` — its content is
  never touched;
- an addendum is a new draft that ``relatesTo`` ``appends`` a signed note, signed like any note;
- a note created with ``requires_cosign`` is complete only once a second physician (not the
  signer) co-signs it (extensions ``EXT_COSIGNER``, ``EXT_COSIGNED_AT``);
- a note is withdrawn as ``entered-in-error``, never deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ehr.modules.notes.documents import (
    CATEGORY_SYSTEM,
    EXT_COSIGNED_AT,
    EXT_COSIGNER,
    EXT_KIND,
    EXT_REQUIRES_COSIGN,
    EXT_SIGNED_AT,
    LOINC,
    SIGNED,
    Signer,
    attachment,
    content,
    doc_status,
    ext,
    instant,
    requires_cosign,
    set_ext,
    user_of,
)
from ehr.modules.notes.errors import (
    NoteCosignError,
    NoteNotAuthorError,
    NoteNotCurrentError,
    NoteNotSignedError,
    NoteSignedImmutableError,
    NoteSignRequiredError,
    NoteTemplateUnknown,
)
from ehr.modules.notes.schemas import NoteAddendum, NoteAmend, NoteCreate, NoteUpdate
from ehr.modules.notes.templates import TEMPLATES, NoteTemplateDef, skeleton

__all__ = [
    "addendum_of",
    "amendment_of",
    "check_author",
    "check_draft",
    "check_signed_current",
    "cosigned",
    "draft_note",
    "entered_in_error",
    "signed",
    "updated_draft",
]


def draft_note(
    patient_id: str,
    payload: NoteCreate,
    author: Signer,
    now: dt.datetime,
    *,
    template: NoteTemplateDef | None = None,
) -> dict[str, Any]:
    """A new draft DocumentReference from ``template`` (default: the shipped one of
    ``payload.kind``); it needs co-signature if the payload or the template says so."""
    if template is None:
        template = TEMPLATES.get(payload.kind)
    if template is None:
        raise NoteTemplateUnknown("No shipped template has this key.", extra={"kind": payload.kind})
    text = payload.text if payload.text is not None else skeleton(template, payload.content_type)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "type": {
            "coding": [
                {"system": LOINC, "code": template.loinc_code, "display": template.loinc_display}
            ],
            "text": template.title,
        },
        "category": [
            {
                "coding": [
                    {"system": CATEGORY_SYSTEM, "code": "clinical-note", "display": "Clinical Note"}
                ]
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": instant(now),
        "author": [author.reference()],
        "description": payload.title or template.title,
        "content": [{"attachment": attachment(text, payload.content_type, payload.title)}],
        "extension": [{"url": EXT_KIND, "valueCode": payload.kind}],
    }
    if payload.requires_cosign or template.requires_cosign:
        set_ext(resource, EXT_REQUIRES_COSIGN, valueBoolean=True)
    if payload.encounter_id is not None:
        resource["context"] = {"encounter": [{"reference": f"Encounter/{payload.encounter_id}"}]}
    return resource


def check_draft(resource: Mapping[str, Any]) -> None:
    """Raise unless the note is a current draft (only drafts change)."""
    if resource.get("status") != "current":
        raise NoteNotCurrentError(
            "The note is superseded or entered in error.", extra={"status": resource.get("status")}
        )
    if doc_status(resource) != "preliminary":
        raise NoteSignedImmutableError(
            "A signed note is never altered: amend it or add an addendum.",
            extra={"doc_status": doc_status(resource)},
        )


def check_signed_current(resource: Mapping[str, Any]) -> None:
    if doc_status(resource) not in SIGNED:
        raise NoteNotSignedError("Only a signed note can be amended, appended or co-signed.")
    if resource.get("status") != "current":
        raise NoteNotCurrentError(
            "The note is superseded or entered in error.", extra={"status": resource.get("status")}
        )


def check_author(resource: Mapping[str, Any], editor: Signer) -> None:
    """Raise unless ``editor`` wrote the draft (a draft is its author's working copy).

    A draft with no readable author (not written through this API) is nobody's: refused too.
    """
    authors = resource.get("author") or []
    author = user_of(authors[0]) if isinstance(authors, list) and authors else None
    if author != editor.user_id:
        raise NoteNotAuthorError("Only the author of a draft may change or withdraw it.")


def updated_draft(
    resource: Mapping[str, Any], payload: NoteUpdate, editor: Signer
) -> dict[str, Any]:
    """The draft with its new text (and title); only its author edits it."""
    check_draft(resource)
    check_author(resource, editor)
    _, old_type, old_title = content(resource)
    content_type = payload.content_type or old_type or "text/markdown"
    title = payload.title or old_title
    updated = dict(resource)
    updated["content"] = [{"attachment": attachment(payload.text, content_type, title)}]
    if payload.title:
        updated["description"] = payload.title
    return updated


def signed(resource: Mapping[str, Any], signer: Signer, now: dt.datetime) -> dict[str, Any]:
    """The draft signed: ``final``, authenticated by ``signer`` at ``now``."""
    check_draft(resource)
    updated = dict(resource)
    updated["docStatus"] = "final"
    updated["authenticator"] = signer.reference()
    set_ext(updated, EXT_SIGNED_AT, valueDateTime=instant(now))
    return updated


def amendment_of(
    old: Mapping[str, Any], payload: NoteAmend, signer: Signer, now: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the new amended note, the old one superseded); the old content is left as it was."""
    check_signed_current(old)
    _, old_type, old_title = content(old)
    content_type = payload.content_type or old_type or "text/markdown"
    title = payload.title or old_title
    new: dict[str, Any] = {
        key: value
        for key, value in old.items()
        if key in {"resourceType", "type", "category", "subject", "context", "description"}
    }
    kind = ext(old, EXT_KIND)
    new.update(
        {
            "status": "current",
            "docStatus": "amended",
            "date": instant(now),
            "author": [signer.reference()],
            "authenticator": signer.reference(),
            "content": [{"attachment": attachment(payload.text, content_type, title)}],
            "relatesTo": [
                {"code": "replaces", "target": {"reference": f"DocumentReference/{old['id']}"}}
            ],
            "extension": [
                *([dict(kind)] if kind is not None else []),
                {"url": EXT_SIGNED_AT, "valueDateTime": instant(now)},
            ],
        }
    )
    if payload.title:
        new["description"] = payload.title
    if requires_cosign(old):
        # The amended text needs the same second signature the original needed.
        set_ext(new, EXT_REQUIRES_COSIGN, valueBoolean=True)
    superseded = dict(old)
    superseded["status"] = "superseded"
    return new, superseded


def addendum_of(
    target: Mapping[str, Any], payload: NoteAddendum, author: Signer, now: dt.datetime
) -> dict[str, Any]:
    """A new draft that appends to the signed ``target``."""
    check_signed_current(target)
    new: dict[str, Any] = {
        key: value
        for key, value in target.items()
        if key in {"resourceType", "type", "category", "subject", "context"}
    }
    new.update(
        {
            "status": "current",
            "docStatus": "preliminary",
            "date": instant(now),
            "author": [author.reference()],
            "description": payload.title or "Addendum",
            "content": [
                {"attachment": attachment(payload.text, payload.content_type, payload.title)}
            ],
            "relatesTo": [
                {"code": "appends", "target": {"reference": f"DocumentReference/{target['id']}"}}
            ],
        }
    )
    kind = ext(target, EXT_KIND)
    if kind is not None:
        new["extension"] = [dict(kind)]
    return new


def entered_in_error(
    resource: Mapping[str, Any], withdrawer: Signer, *, may_sign: bool
) -> dict[str, Any]:
    """The current note marked entered-in-error (its content kept; never a hard delete).

    A draft may be withdrawn by its author only; a signed note by anyone with ``note:sign``.
    """
    if resource.get("status") != "current":
        raise NoteNotCurrentError(
            "The note is superseded or entered in error.", extra={"status": resource.get("status")}
        )
    if doc_status(resource) in SIGNED and not may_sign:
        raise NoteSignRequiredError("Only a physician may withdraw a signed note.")
    if doc_status(resource) not in SIGNED:
        check_author(resource, withdrawer)
    updated = dict(resource)
    updated["status"] = "entered-in-error"
    return updated


def cosigned(resource: Mapping[str, Any], cosigner: Signer, now: dt.datetime) -> dict[str, Any]:
    """The signed note co-signed by a second physician (never the signer)."""
    check_signed_current(resource)
    if not requires_cosign(resource):
        raise NoteCosignError(
            "This note does not require co-signature.", extra={"reason": "not_required"}
        )
    if ext(resource, EXT_COSIGNER) is not None:
        raise NoteCosignError(
            "The note is already co-signed.", extra={"reason": "already_cosigned"}
        )
    if user_of(resource.get("authenticator")) == cosigner.user_id:
        raise NoteCosignError(
            "The co-signer must be another physician than the signer.",
            extra={"reason": "cosigner_is_signer"},
        )
    updated = dict(resource)
    set_ext(updated, EXT_COSIGNER, valueReference=cosigner.reference())
    set_ext(updated, EXT_COSIGNED_AT, valueDateTime=instant(now))
    return updated
