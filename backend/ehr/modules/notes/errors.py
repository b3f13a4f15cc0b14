"""The notes module's refusals (one hierarchy: ehr.core.errors; problem+json with a stable code)."""

from __future__ import annotations

from ehr.core.errors import ConflictError, PermissionDenied, RequestValidationFailed
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
