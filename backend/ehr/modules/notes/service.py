"""Clinical notes as FHIR R4 DocumentReferences: drafts, signature, amendment, addenda, co-sign.

The rules (each a pure function here, so they are tested without HAPI):

- a draft is ``docStatus`` ``preliminary``; only drafts change (a signed note → 409
  ``note_signed_immutable``);
- signing sets ``docStatus`` ``final``, the ``authenticator`` and the sign time (extension
  :data:`EXT_SIGNED_AT`); the update is versioned on the version just read, so of two clinicians
  signing at once exactly one succeeds and the other gets 412 (or 409 if it read the signed note);
- an amendment is a NEW DocumentReference (``docStatus`` ``amended``, signed by the amender,
  ``relatesTo`` ``replaces`` the old one); the old one only turns ``superseded`` — its content is
  never touched; both writes are one FHIR transaction (nothing half-written), the old one
  versioned (``ifMatch``);
- an addendum is a new draft that ``relatesTo`` ``appends`` a signed note, signed like any note;
- a note created with ``requires_cosign`` is complete only once a second physician (not the
  signer) co-signs it (extensions :data:`EXT_COSIGNER`, :data:`EXT_COSIGNED_AT`);
- patients see only their own signed notes (``final``/``amended``), never drafts.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from ehr.core.errors import ConflictError, PermissionDenied, RequestValidationFailed
from ehr.fhir import (
    FhirResourceGone,
    FhirResourceNotFound,
    TenantFhirClient,
    bundle_resources,
    create_entry,
    new_full_url,
    transaction_bundle,
    update_entry,
    version_id,
)
from ehr.modules.notes.schemas import (
    NoteAddendum,
    NoteAmend,
    NoteCreate,
    NotePerson,
    NoteRelation,
    NoteSummary,
    NoteUpdate,
)
from ehr.modules.notes.templates import TEMPLATES, skeleton

__all__ = [
    "CATEGORY_SYSTEM",
    "EXT_COSIGNED_AT",
    "EXT_COSIGNER",
    "EXT_KIND",
    "EXT_REQUIRES_COSIGN",
    "EXT_SIGNED_AT",
    "LOINC",
    "NoteNotAuthorError",
    "NoteService",
    "Signer",
    "addendum_of",
    "amendment_of",
    "check_author",
    "check_draft",
    "cosigned",
    "draft_note",
    "entered_in_error",
    "is_released",
    "signed",
    "to_summary",
    "updated_draft",
]

logger = structlog.get_logger(__name__)

LOINC: Final = "http://loinc.org"
CATEGORY_SYSTEM: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
USER_SYSTEM: Final = "urn:ehr:user"
_EXT: Final = "urn:ehr:fhir:extension:"
EXT_KIND: Final = _EXT + "note-kind"
EXT_SIGNED_AT: Final = _EXT + "note-signed-at"
EXT_REQUIRES_COSIGN: Final = _EXT + "note-requires-cosign"
EXT_COSIGNER: Final = _EXT + "note-cosigner"
EXT_COSIGNED_AT: Final = _EXT + "note-cosigned-at"
_SIGNED: Final = frozenset({"final", "amended"})


class NoteSignedImmutableError(ConflictError):
    """A signed note is never altered: amend it or add an addendum."""

    code = "note_signed_immutable"
    title = "A signed note cannot be changed"


class NoteNotSignedError(ConflictError):
    """The operation needs a signed note (amend, addendum, co-sign)."""

    code = "note_not_signed"
    title = "The note is not signed"


class NoteNotCurrentError(ConflictError):
    """The note was superseded by an amendment or entered in error."""

    code = "note_not_current"
    title = "The note is not the current version"


class NoteCosignError(ConflictError):
    """Co-signature is not needed, already given, or asked of the signer."""

    code = "note_cosign_not_allowed"
    title = "The note cannot be co-signed"


class NoteSignRequiredError(PermissionDenied):
    """Withdrawing a signed note is a signer's act (``note:sign``), not a draft writer's."""

    code = "note_sign_required"
    title = "Withdrawing a signed note needs note:sign"


class NoteNotAuthorError(PermissionDenied):
    """A draft is its author's until signed: nobody else edits or withdraws it."""

    code = "note_not_author"
    title = "Only the note's author may change a draft"


class NoteEncounterInvalid(RequestValidationFailed):
    """``encounter_id`` names no Encounter of this patient."""

    code = "note_encounter_invalid"
    title = "The encounter is not this patient's"


class NoteNotFound(FhirResourceNotFound):
    """The note does not exist, is another patient's, or is hidden from a patient (a draft)."""


@dataclass(frozen=True, slots=True)
class Signer:
    """The user writing or signing (from the principal: id and display name)."""

    user_id: str
    display: str | None

    def reference(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"identifier": {"system": USER_SYSTEM, "value": self.user_id}}
        if self.display:
            ref["display"] = self.display
        return ref


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _attachment(text: str, content_type: str, title: str | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "contentType": f"{content_type}; charset=utf-8",
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
    }
    if title:
        attachment["title"] = title
    return attachment


def _ext(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for item in resource.get("extension") or []:
        if isinstance(item, Mapping) and item.get("url") == url:
            return item
    return None


def _set_ext(resource: dict[str, Any], url: str, **value: Any) -> None:
    others = [e for e in resource.get("extension") or [] if e.get("url") != url]
    resource["extension"] = [*others, {"url": url, **value}]


def _doc_status(resource: Mapping[str, Any]) -> str | None:
    value = resource.get("docStatus")
    return value if isinstance(value, str) else None


def _content(resource: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(text, content type, title) of the first attachment."""
    for item in resource.get("content") or []:
        attachment = item.get("attachment") if isinstance(item, Mapping) else None
        if not isinstance(attachment, Mapping):
            continue
        raw_type = attachment.get("contentType")
        content_type = raw_type.split(";", 1)[0].strip() if isinstance(raw_type, str) else None
        text = None
        data = attachment.get("data")
        if isinstance(data, str):
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                text = None
        title = attachment.get("title")
        return text, content_type, title if isinstance(title, str) else None
    return None, None, None


def _requires_cosign(resource: Mapping[str, Any]) -> bool:
    ext = _ext(resource, EXT_REQUIRES_COSIGN)
    return bool(ext and ext.get("valueBoolean") is True)


def is_released(resource: Mapping[str, Any]) -> bool:
    """Whether a patient may see the note: signed (final/amended) and not entered in error."""
    return _doc_status(resource) in _SIGNED and resource.get("status") != "entered-in-error"


def draft_note(
    patient_id: str, payload: NoteCreate, author: Signer, now: dt.datetime
) -> dict[str, Any]:
    """A new draft DocumentReference from the template of ``payload.kind``."""
    template = TEMPLATES[payload.kind]
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
        "date": _instant(now),
        "author": [author.reference()],
        "description": payload.title or template.title,
        "content": [{"attachment": _attachment(text, payload.content_type, payload.title)}],
        "extension": [{"url": EXT_KIND, "valueCode": payload.kind}],
    }
    if payload.requires_cosign:
        _set_ext(resource, EXT_REQUIRES_COSIGN, valueBoolean=True)
    if payload.encounter_id is not None:
        resource["context"] = {"encounter": [{"reference": f"Encounter/{payload.encounter_id}"}]}
    return resource


def check_draft(resource: Mapping[str, Any]) -> None:
    """Raise unless the note is a current draft (only drafts change)."""
    if resource.get("status") != "current":
        raise NoteNotCurrentError(
            "The note is superseded or entered in error.", extra={"status": resource.get("status")}
        )
    if _doc_status(resource) != "preliminary":
        raise NoteSignedImmutableError(
            "A signed note is never altered: amend it or add an addendum.",
            extra={"doc_status": _doc_status(resource)},
        )


def _check_signed_current(resource: Mapping[str, Any]) -> None:
    if _doc_status(resource) not in _SIGNED:
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
    author = _user_of(authors[0]) if isinstance(authors, list) and authors else None
    if author != editor.user_id:
        raise NoteNotAuthorError("Only the author of a draft may change or withdraw it.")


def updated_draft(
    resource: Mapping[str, Any], payload: NoteUpdate, editor: Signer
) -> dict[str, Any]:
    """The draft with its new text (and title); only its author edits it."""
    check_draft(resource)
    check_author(resource, editor)
    _, old_type, old_title = _content(resource)
    content_type = payload.content_type or old_type or "text/markdown"
    title = payload.title or old_title
    updated = dict(resource)
    updated["content"] = [{"attachment": _attachment(payload.text, content_type, title)}]
    if payload.title:
        updated["description"] = payload.title
    return updated


def signed(resource: Mapping[str, Any], signer: Signer, now: dt.datetime) -> dict[str, Any]:
    """The draft signed: ``final``, authenticated by ``signer`` at ``now``."""
    check_draft(resource)
    updated = dict(resource)
    updated["docStatus"] = "final"
    updated["authenticator"] = signer.reference()
    _set_ext(updated, EXT_SIGNED_AT, valueDateTime=_instant(now))
    return updated


def amendment_of(
    old: Mapping[str, Any], payload: NoteAmend, signer: Signer, now: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the new amended note, the old one superseded); the old content is left as it was."""
    _check_signed_current(old)
    _, old_type, old_title = _content(old)
    content_type = payload.content_type or old_type or "text/markdown"
    title = payload.title or old_title
    new: dict[str, Any] = {
        key: value
        for key, value in old.items()
        if key in {"resourceType", "type", "category", "subject", "context", "description"}
    }
    kind = _ext(old, EXT_KIND)
    new.update(
        {
            "status": "current",
            "docStatus": "amended",
            "date": _instant(now),
            "author": [signer.reference()],
            "authenticator": signer.reference(),
            "content": [{"attachment": _attachment(payload.text, content_type, title)}],
            "relatesTo": [
                {"code": "replaces", "target": {"reference": f"DocumentReference/{old['id']}"}}
            ],
            "extension": [
                *([dict(kind)] if kind is not None else []),
                {"url": EXT_SIGNED_AT, "valueDateTime": _instant(now)},
            ],
        }
    )
    if payload.title:
        new["description"] = payload.title
    if _requires_cosign(old):
        # The amended text needs the same second signature the original needed.
        _set_ext(new, EXT_REQUIRES_COSIGN, valueBoolean=True)
    superseded = dict(old)
    superseded["status"] = "superseded"
    return new, superseded


def addendum_of(
    target: Mapping[str, Any], payload: NoteAddendum, author: Signer, now: dt.datetime
) -> dict[str, Any]:
    """A new draft that appends to the signed ``target``."""
    _check_signed_current(target)
    new: dict[str, Any] = {
        key: value
        for key, value in target.items()
        if key in {"resourceType", "type", "category", "subject", "context"}
    }
    new.update(
        {
            "status": "current",
            "docStatus": "preliminary",
            "date": _instant(now),
            "author": [author.reference()],
            "description": payload.title or "Addendum",
            "content": [
                {"attachment": _attachment(payload.text, payload.content_type, payload.title)}
            ],
            "relatesTo": [
                {"code": "appends", "target": {"reference": f"DocumentReference/{target['id']}"}}
            ],
        }
    )
    kind = _ext(target, EXT_KIND)
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
    if _doc_status(resource) in _SIGNED and not may_sign:
        raise NoteSignRequiredError("Only a physician may withdraw a signed note.")
    if _doc_status(resource) not in _SIGNED:
        check_author(resource, withdrawer)
    updated = dict(resource)
    updated["status"] = "entered-in-error"
    return updated


def _person(reference: object) -> NotePerson | None:
    if not isinstance(reference, Mapping):
        return None
    identifier = reference.get("identifier")
    value = identifier.get("value") if isinstance(identifier, Mapping) else None
    display = reference.get("display")
    return NotePerson(
        user_id=value if isinstance(value, str) else None,
        display=display if isinstance(display, str) else None,
    )


def _user_of(reference: object) -> str | None:
    person = _person(reference)
    return person.user_id if person is not None else None


def cosigned(resource: Mapping[str, Any], cosigner: Signer, now: dt.datetime) -> dict[str, Any]:
    """The signed note co-signed by a second physician (never the signer)."""
    _check_signed_current(resource)
    if not _requires_cosign(resource):
        raise NoteCosignError(
            "This note does not require co-signature.", extra={"reason": "not_required"}
        )
    if _ext(resource, EXT_COSIGNER) is not None:
        raise NoteCosignError(
            "The note is already co-signed.", extra={"reason": "already_cosigned"}
        )
    if _user_of(resource.get("authenticator")) == cosigner.user_id:
        raise NoteCosignError(
            "The co-signer must be another physician than the signer.",
            extra={"reason": "cosigner_is_signer"},
        )
    updated = dict(resource)
    _set_ext(updated, EXT_COSIGNER, valueReference=cosigner.reference())
    _set_ext(updated, EXT_COSIGNED_AT, valueDateTime=_instant(now))
    return updated


def _target_id(relation: Mapping[str, Any]) -> str | None:
    target = relation.get("target")
    reference = target.get("reference") if isinstance(target, Mapping) else None
    if isinstance(reference, str) and reference.startswith("DocumentReference/"):
        return reference.split("/", 2)[1]
    return None


def to_summary(resource: Mapping[str, Any], patient_id: str) -> NoteSummary:
    """The summary of a note's DocumentReference (its text decoded)."""
    meta = resource.get("meta") or {}
    text, content_type, title = _content(resource)
    coding: Mapping[str, Any] = next(iter((resource.get("type") or {}).get("coding") or []), {})
    kind = _ext(resource, EXT_KIND)
    signed_at = _ext(resource, EXT_SIGNED_AT)
    cosigner = _ext(resource, EXT_COSIGNER)
    cosigned_at = _ext(resource, EXT_COSIGNED_AT)
    encounter_id = None
    context = resource.get("context")
    for ref in (context.get("encounter") or []) if isinstance(context, Mapping) else []:
        reference = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(reference, str) and reference.startswith("Encounter/"):
            encounter_id = reference.split("/", 2)[1]
    requires = _requires_cosign(resource)
    doc_status = _doc_status(resource)
    description = resource.get("description")
    authors = resource.get("author") or []
    return NoteSummary(
        id=str(resource.get("id", "")),
        version=meta.get("versionId") if isinstance(meta, Mapping) else None,
        patient_id=patient_id,
        kind=kind.get("valueCode") if kind is not None else None,
        type_code=coding.get("code"),
        type_display=coding.get("display"),
        title=description if isinstance(description, str) else title,
        status=str(resource.get("status", "")),
        doc_status=doc_status,
        content_type=content_type,
        text=text,
        encounter_id=encounter_id,
        date=resource.get("date"),
        author=_person(authors[0]) if authors else None,
        authenticator=_person(resource.get("authenticator")),
        signed_at=signed_at.get("valueDateTime") if signed_at is not None else None,
        requires_cosign=requires,
        cosigner=_person(cosigner.get("valueReference")) if cosigner is not None else None,
        cosigned_at=cosigned_at.get("valueDateTime") if cosigned_at is not None else None,
        complete=doc_status in _SIGNED and (not requires or cosigner is not None),
        relates_to=[
            NoteRelation(code=str(r.get("code")), note_id=_target_id(r))
            for r in resource.get("relatesTo") or []
            if isinstance(r, Mapping)
        ],
    )


def _subject_is(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(reference, str):
        return False
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NoteService:
    """The notes use cases for one tenant; ``released_only`` for a patient's own view."""

    def __init__(self, fhir: TenantFhirClient, *, released_only: bool = False) -> None:
        self._fhir = fhir
        self._released_only = released_only

    async def list(self, patient_id: str, *, doc_status: str | None = None) -> list[dict[str, Any]]:
        """The patient's notes, newest first (bounded to 200); patients see released ones."""
        params = [("subject", f"Patient/{patient_id}"), ("_sort", "-date"), ("_count", "200")]
        bundle = await self._fhir.search("DocumentReference", params)
        notes = [
            r for r in bundle_resources(bundle, "DocumentReference") if _subject_is(r, patient_id)
        ]
        if self._released_only:
            notes = [r for r in notes if is_released(r)]
        if doc_status is not None:
            notes = [r for r in notes if _doc_status(r) == doc_status]
        return notes

    async def get(self, patient_id: str, note_id: str) -> dict[str, Any]:
        """The note, if it is this patient's (and, for a patient, released); else 404."""
        resource = await self._fhir.read("DocumentReference", note_id)
        if not _subject_is(resource, patient_id) or (
            self._released_only and not is_released(resource)
        ):
            raise NoteNotFound("The note does not exist")
        return resource

    async def create(self, patient_id: str, payload: NoteCreate, author: Signer) -> dict[str, Any]:
        """A new draft (its encounter, if any, must be this patient's)."""
        if payload.encounter_id is not None:
            await self._check_encounter(patient_id, payload.encounter_id)
        stored = await self._fhir.create(draft_note(patient_id, payload, author, _utc_now()))
        logger.info(
            "notes.create.completed", resource_id=stored.get("id"), tenant=self._fhir.tenant
        )
        return stored

    async def update(
        self, patient_id: str, note_id: str, payload: NoteUpdate, editor: Signer, *, if_match: str
    ) -> dict[str, Any]:
        """The draft's new text (its author only), a versioned update on the caller's If-Match."""
        current = await self.get(patient_id, note_id)
        return await self._fhir.update(updated_draft(current, payload, editor), if_match=if_match)

    async def sign(
        self, patient_id: str, note_id: str, signer: Signer, *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Sign the draft; versioned on the version read, so concurrent signers: one wins."""
        current = await self.get(patient_id, note_id)
        version = if_match or version_id(current)
        stored = await self._fhir.update(signed(current, signer, _utc_now()), if_match=version)
        logger.info("notes.sign.completed", resource_id=note_id, tenant=self._fhir.tenant)
        return stored

    async def cosign(
        self, patient_id: str, note_id: str, cosigner: Signer, *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Co-sign a signed note that requires it (another physician than the signer)."""
        current = await self.get(patient_id, note_id)
        version = if_match or version_id(current)
        stored = await self._fhir.update(cosigned(current, cosigner, _utc_now()), if_match=version)
        logger.info("notes.cosign.completed", resource_id=note_id, tenant=self._fhir.tenant)
        return stored

    async def mark_entered_in_error(
        self,
        patient_id: str,
        note_id: str,
        withdrawer: Signer,
        *,
        may_sign: bool,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """Withdraw the note (status entered-in-error), versioned on the version read."""
        current = await self.get(patient_id, note_id)
        version = if_match or version_id(current)
        stored = await self._fhir.update(
            entered_in_error(current, withdrawer, may_sign=may_sign), if_match=version
        )
        logger.info(
            "notes.entered_in_error.completed", resource_id=note_id, tenant=self._fhir.tenant
        )
        return stored

    async def amend(
        self,
        patient_id: str,
        note_id: str,
        payload: NoteAmend,
        signer: Signer,
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """The amendment (a new signed note) and the old one superseded, in one transaction."""
        old = await self.get(patient_id, note_id)
        new, superseded = amendment_of(old, payload, signer, _utc_now())
        version = if_match or version_id(old)
        bundle = transaction_bundle(
            [
                create_entry(new, full_url=new_full_url()),
                update_entry(superseded, if_match=version),
            ]
        )
        answer = await self._fhir.transaction(bundle, return_resources=True)
        for resource in bundle_resources(answer, "DocumentReference"):
            if resource.get("id") != note_id:
                logger.info(
                    "notes.amend.completed",
                    resource_id=resource.get("id"),
                    replaces=note_id,
                    tenant=self._fhir.tenant,
                )
                return resource
        raise NoteNotFound("The amendment was not returned")  # pragma: no cover - HAPI returns it

    async def add_addendum(
        self, patient_id: str, note_id: str, payload: NoteAddendum, author: Signer
    ) -> dict[str, Any]:
        """A new draft appending to the signed note."""
        target = await self.get(patient_id, note_id)
        stored = await self._fhir.create(addendum_of(target, payload, author, _utc_now()))
        logger.info(
            "notes.addendum.completed",
            resource_id=stored.get("id"),
            appends=note_id,
            tenant=self._fhir.tenant,
        )
        return stored

    async def _check_encounter(self, patient_id: str, encounter_id: str) -> None:
        try:
            encounter = await self._fhir.read("Encounter", encounter_id)
        except (FhirResourceNotFound, FhirResourceGone):
            raise NoteEncounterInvalid(
                "The encounter does not exist.", extra={"encounter_id": encounter_id}
            ) from None
        if not _subject_is(encounter, patient_id):
            raise NoteEncounterInvalid(
                "The encounter belongs to another patient.", extra={"encounter_id": encounter_id}
            )
