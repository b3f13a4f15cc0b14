"""A note's DocumentReference as data: the extensions this module writes, the signer, and the
readers every rule and view uses (content, status, people, the summary shown by the API).

Pure functions: no I/O, tested without HAPI.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ehr.modules import clinical_record
from ehr.modules.notes.schemas import NotePerson, NoteRelation, NoteSummary

__all__ = [
    "CATEGORY_SYSTEM",
    "EXT_COSIGNED_AT",
    "EXT_COSIGNER",
    "EXT_KIND",
    "EXT_REQUIRES_COSIGN",
    "EXT_SIGNED_AT",
    "LOINC",
    "SIGNED",
    "USER_SYSTEM",
    "Signer",
    "attachment",
    "content",
    "doc_status",
    "ext",
    "instant",
    "is_released",
    "person",
    "requires_cosign",
    "set_ext",
    "subject_is",
    "target_id",
    "to_summary",
    "user_of",
]

LOINC: Final = "http://loinc.org"
CATEGORY_SYSTEM: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
# The user identifier system every chart record writes (ehr.modules.clinical_record).
USER_SYSTEM: Final = clinical_record.USER_SYSTEM
_EXT: Final = "urn:ehr:fhir:extension:"
EXT_KIND: Final = _EXT + "note-kind"
EXT_SIGNED_AT: Final = _EXT + "note-signed-at"
EXT_REQUIRES_COSIGN: Final = _EXT + "note-requires-cosign"
EXT_COSIGNER: Final = _EXT + "note-cosigner"
EXT_COSIGNED_AT: Final = _EXT + "note-cosigned-at"
SIGNED: Final = frozenset({"final", "amended"})


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


def instant(moment: dt.datetime) -> str:
    """A FHIR instant in UTC, to the second."""
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def attachment(text: str, content_type: str, title: str | None) -> dict[str, Any]:
    """The note's text as an inline UTF-8 Attachment (base64 ``data``)."""
    value: dict[str, Any] = {
        "contentType": f"{content_type}; charset=utf-8",
        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
    }
    if title:
        value["title"] = title
    return value


def ext(resource: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for item in resource.get("extension") or []:
        if isinstance(item, Mapping) and item.get("url") == url:
            return item
    return None


def set_ext(resource: dict[str, Any], url: str, **value: Any) -> None:
    others = [e for e in resource.get("extension") or [] if e.get("url") != url]
    resource["extension"] = [*others, {"url": url, **value}]


def doc_status(resource: Mapping[str, Any]) -> str | None:
    value = resource.get("docStatus")
    return value if isinstance(value, str) else None


def content(resource: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(text, content type, title) of the first attachment."""
    for item in resource.get("content") or []:
        found = item.get("attachment") if isinstance(item, Mapping) else None
        if not isinstance(found, Mapping):
            continue
        raw_type = found.get("contentType")
        content_type = raw_type.split(";", 1)[0].strip() if isinstance(raw_type, str) else None
        text = None
        data = found.get("data")
        if isinstance(data, str):
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                text = None
        title = found.get("title")
        return text, content_type, title if isinstance(title, str) else None
    return None, None, None


def requires_cosign(resource: Mapping[str, Any]) -> bool:
    flag = ext(resource, EXT_REQUIRES_COSIGN)
    return bool(flag and flag.get("valueBoolean") is True)


def is_released(resource: Mapping[str, Any]) -> bool:
    """Whether a patient may see the note: signed (final/amended) and not entered in error."""
    return doc_status(resource) in SIGNED and resource.get("status") != "entered-in-error"


def person(reference: object) -> NotePerson | None:
    """The user a Reference names (``clinical_record.user_of``), as a note shows it."""
    who = clinical_record.user_of(reference)
    return NotePerson(user_id=who.user_id, display=who.display) if who is not None else None


def user_of(reference: object) -> str | None:
    who = person(reference)
    return who.user_id if who is not None else None


def target_id(relation: Mapping[str, Any]) -> str | None:
    target = relation.get("target")
    reference = target.get("reference") if isinstance(target, Mapping) else None
    if isinstance(reference, str) and reference.startswith("DocumentReference/"):
        return reference.split("/", 2)[1]
    return None


def to_summary(resource: Mapping[str, Any], patient_id: str) -> NoteSummary:
    """The summary of a note's DocumentReference (its text decoded)."""
    meta = resource.get("meta") or {}
    text, content_type, title = content(resource)
    coding: Mapping[str, Any] = next(iter((resource.get("type") or {}).get("coding") or []), {})
    kind = ext(resource, EXT_KIND)
    signed_at = ext(resource, EXT_SIGNED_AT)
    cosigner = ext(resource, EXT_COSIGNER)
    cosigned_at = ext(resource, EXT_COSIGNED_AT)
    encounter_id = None
    context = resource.get("context")
    for ref in (context.get("encounter") or []) if isinstance(context, Mapping) else []:
        reference = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(reference, str) and reference.startswith("Encounter/"):
            encounter_id = reference.split("/", 2)[1]
    requires = requires_cosign(resource)
    status = doc_status(resource)
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
        doc_status=status,
        content_type=content_type,
        text=text,
        encounter_id=encounter_id,
        date=resource.get("date"),
        author=person(authors[0]) if authors else None,
        authenticator=person(resource.get("authenticator")),
        signed_at=signed_at.get("valueDateTime") if signed_at is not None else None,
        requires_cosign=requires,
        cosigner=person(cosigner.get("valueReference")) if cosigner is not None else None,
        cosigned_at=cosigned_at.get("valueDateTime") if cosigned_at is not None else None,
        complete=status in SIGNED and (not requires or cosigner is not None),
        relates_to=[
            NoteRelation(code=str(r.get("code")), note_id=target_id(r))
            for r in resource.get("relatesTo") or []
            if isinstance(r, Mapping)
        ],
    )


def subject_is(resource: Mapping[str, Any], patient_id: str) -> bool:
    """Whether the resource's subject is this patient (relative or absolute reference)."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(reference, str):
        return False
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")
