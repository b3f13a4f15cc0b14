"""The notes module's refusals (one hierarchy: ehr.core.errors; problem+json with a stable code)."""

from __future__ import annotations

from ehr.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    RequestValidationFailed,
)
from ehr.fhir import FhirResourceNotFound

__all__ = [
    "NoteCosignError",
    "NoteEncounterInvalid",
    "NoteNotAuthorError",
    "NoteNotCurrentError",
    "NoteNotFound",
    "NoteNotSignedError",
    "NoteSignRequiredError",
    "NoteSignedImmutableError",
    "NoteTemplateInvalid",
    "NoteTemplateKeyReservedError",
    "NoteTemplateNotFoundError",
    "NoteTemplateUnknown",
]


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


class NoteTemplateUnknown(RequestValidationFailed):
    """``kind`` names neither a shipped template nor one of the tenant's."""

    code = "note_template_unknown"
    title = "No such note template"


class NoteTemplateNotFoundError(NotFoundError):
    """The tenant has no template under this key (shipped templates are not the tenant's)."""

    code = "note_template_not_found"
    title = "The tenant has no such note template"


class NoteTemplateKeyReservedError(ConflictError):
    """A shipped template's key: a tenant adds templates, it never redefines a shipped one."""

    code = "note_template_key_reserved"
    title = "The key is a shipped template's"


class NoteTemplateInvalid(RequestValidationFailed):
    """A template's LOINC type is not an allowed note type, or its sections repeat."""

    code = "note_template_invalid"
    title = "The note template is not valid"
