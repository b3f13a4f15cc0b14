"""The ``/api/patients/{patient_id}/notes`` routes (thin: authorize, call, audit, return).

Permissions: ``clinical:read`` to list and read (a patient: its own signed notes only),
``clinical:write`` to write drafts and addenda, ``note:sign`` to sign, amend and co-sign
(and to withdraw a signed note as entered-in-error; a draft needs only ``clinical:write`` and
must be the caller's own: 403 ``note_not_author``). Every note shown is noted on the PHI audit
trail; restricted patients need break-glass. Updates of a draft need ``If-Match``; sign,
co-sign and amend take it optionally (they are versioned on the version read anyway: of two
concurrent signers exactly one signs, and each act's Provenance is in the same transaction).
The list is paged (``limit``, ``cursor`` → ``next``); templates are the shipped ones and the
tenant's own (:mod:`ehr.modules.notes.admin_router` manages those).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status

from ehr.core.dependencies import SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules import clinical_record, patients
from ehr.modules.clinical_record import PatientGate, open_patient
from ehr.modules.notes.dependencies import NoteServiceDep, signer_of
from ehr.modules.notes.documents import to_summary
from ehr.modules.notes.paging import DEFAULT_LIMIT, MAX_LIMIT
from ehr.modules.notes.provenance import signature_record
from ehr.modules.notes.schemas import (
    NoteAddendum,
    NoteAmend,
    NoteCreate,
    NoteId,
    NoteList,
    NoteSummary,
    NoteTemplate,
    NoteTemplateList,
    NoteUpdate,
)
from ehr.modules.notes.template_store import resolve_template, templates_for
from ehr.modules.notes.templates import skeleton
from ehr.platform.audit.dependencies import AuditTrail, PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["router"]

router = APIRouter(
    prefix="/api/patients/{patient_id}/notes", tags=["notes"], route_class=IntakeRoute
)

CanRead = Annotated[Principal, RequirePermission(Permission.CLINICAL_READ)]
CanWrite = Annotated[Principal, RequirePermission(Permission.CLINICAL_WRITE)]
CanSign = Annotated[Principal, RequirePermission(Permission.NOTE_SIGN)]
_IF_MATCH_PATTERN = r'^(W/)?"?[A-Za-z0-9\-.]{1,64}"?$'
_IF_MATCH_HELP = 'The version read (`3` or `W/"3"`); a newer stored version → 412.'
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=40, pattern=_IF_MATCH_PATTERN, description=_IF_MATCH_HELP),
]
_READ_ERRORS = problem_responses(401, 403, 404, 410, 422, 502, 503, 504)
_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 412, 413, 422, 502, 503, 504)


def _note(audit: AuditTrail, action: str, gate: PatientGate, resource: Mapping[str, Any]) -> None:
    gate.note(
        audit,
        action,
        resource_type="DocumentReference",
        resource_id=str(resource.get("id", "")) or None,
    )


def _shown(response: Response, summary: NoteSummary) -> NoteSummary:
    if summary.version:
        response.headers["ETag"] = f'W/"{summary.version}"'
    return summary


def _created(response: Response, patient_id: str, summary: NoteSummary) -> NoteSummary:
    response.headers["Location"] = f"/api/patients/{patient_id}/notes/{summary.id}"
    return _shown(response, summary)


@router.get("/templates", response_model=NoteTemplateList, responses=_READ_ERRORS)
async def list_note_templates(
    patient_id: patients.PatientId, principal: CanWrite, session: SessionDep
) -> NoteTemplateList:
    """The shipped templates (progress, SOAP, H&P, discharge summary), then the tenant's own
    (`shipped: false`), with their sections.

    Not patient data (no audit note); the path is per patient so the chart has one prefix.
    """
    return NoteTemplateList(
        items=[
            NoteTemplate(
                kind=t.kind,
                title=t.title,
                type_code=t.loinc_code,
                type_display=t.loinc_display,
                sections=list(t.sections),
                requires_cosign=t.requires_cosign,
                shipped=t.shipped,
                skeleton=skeleton(t, "text/markdown"),
            )
            for t in await templates_for(session, principal.tenant_id)
        ]
    )


@router.get("", response_model=NoteList, responses=_READ_ERRORS)
async def list_notes(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    doc_status: Annotated[
        Literal["preliminary", "final", "amended"] | None,
        Query(description="Only drafts (preliminary), signed (final) or amendments."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Notes per page (default 50, at most 200).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=300, description="The `next` of the previous page."),
    ] = None,
) -> NoteList:
    """One page of the patient's notes, newest first (a patient sees only its signed notes);
    `next` pages on (a keyset: notes written meanwhile never shift a page). A cursor not
    given out by this API → 422 `invalid_note_cursor`."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    page = await service.list(
        patient_id, status=doc_status, cursors=cursors, limit=limit, cursor=cursor
    )
    for resource in page.notes:
        _note(audit, "note:list", gate, resource)
    if not page.notes:
        audit.access("note:list", resource_type="DocumentReference", patient_id=patient_id)
    return NoteList(items=[to_summary(r, patient_id) for r in page.notes], next=page.next)


@router.get("/{note_id}", response_model=NoteSummary, responses=_READ_ERRORS)
async def read_note(
    patient_id: patients.PatientId,
    note_id: NoteId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> NoteSummary:
    """One note with its text, its signature records (`provenance`) and ETag (a draft is 404
    for a patient)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, note_id)
    records = await service.provenance(note_id)
    _note(audit, "note:read", gate, resource)
    summary = to_summary(resource, patient_id)
    summary.provenance = [signature_record(r) for r in records]
    return _shown(response, summary)


@router.post(
    "", response_model=NoteSummary, status_code=status.HTTP_201_CREATED, responses=_WRITE_ERRORS
)
async def create_note(
    patient_id: patients.PatientId,
    payload: NoteCreate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    session: SessionDep,
) -> NoteSummary:
    """A new draft from a shipped or tenant template (its text defaults to the template's
    sections; an unknown `kind` → 422 `note_template_unknown`)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    template = await resolve_template(session, principal.tenant_id, payload.kind)
    stored = await service.create(patient_id, payload, signer_of(principal), template=template)
    _note(audit, "note:create", gate, stored)
    return _created(response, patient_id, to_summary(stored, patient_id))


@router.put(
    "/{note_id}",
    response_model=NoteSummary,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 413, 422, 428, 502, 503, 504),
)
async def update_note(
    patient_id: patients.PatientId,
    note_id: NoteId,
    payload: NoteUpdate,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> NoteSummary:
    """Replace a draft's text (its author only: another user → 403 `note_not_author`; a signed
    note → 409 `note_signed_immutable`). `If-Match` is required (428 `if_match_required`, as for
    every chart record)."""
    version = clinical_record.require_if_match(
        if_match, "Send If-Match with the version of the draft you edited"
    )
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.update(
        patient_id, note_id, payload, signer_of(principal), if_match=version
    )
    _note(audit, "note:update", gate, stored)
    return _shown(response, to_summary(stored, patient_id))


@router.post("/{note_id}/sign", response_model=NoteSummary, responses=_WRITE_ERRORS)
async def sign_note(
    patient_id: patients.PatientId,
    note_id: NoteId,
    principal: CanSign,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> NoteSummary:
    """Sign a draft: final, the signer as authenticator, the sign time."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.sign(patient_id, note_id, signer_of(principal), if_match=if_match)
    _note(audit, "note:sign", gate, stored)
    return _shown(response, to_summary(stored, patient_id))


@router.post("/{note_id}/cosign", response_model=NoteSummary, responses=_WRITE_ERRORS)
async def cosign_note(
    patient_id: patients.PatientId,
    note_id: NoteId,
    principal: CanSign,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> NoteSummary:
    """Co-sign a signed note that requires it (a physician other than the signer)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.cosign(patient_id, note_id, signer_of(principal), if_match=if_match)
    _note(audit, "note:cosign", gate, stored)
    return _shown(response, to_summary(stored, patient_id))


@router.post(
    "/{note_id}/amend",
    response_model=NoteSummary,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def amend_note(
    patient_id: patients.PatientId,
    note_id: NoteId,
    payload: NoteAmend,
    principal: CanSign,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> NoteSummary:
    """Amend a signed note: a new signed note replaces it; the old one is superseded, unaltered."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.amend(
        patient_id, note_id, payload, signer_of(principal), if_match=if_match
    )
    _note(audit, "note:amend", gate, stored)
    return _created(response, patient_id, to_summary(stored, patient_id))


@router.post(
    "/{note_id}/addenda",
    response_model=NoteSummary,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def add_addendum(
    patient_id: patients.PatientId,
    note_id: NoteId,
    payload: NoteAddendum,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> NoteSummary:
    """An addendum to a signed note: a new draft that appends to it (sign it like any note)."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.add_addendum(patient_id, note_id, payload, signer_of(principal))
    _note(audit, "note:addendum", gate, stored)
    return _created(response, patient_id, to_summary(stored, patient_id))


@router.post("/{note_id}/entered-in-error", response_model=NoteSummary, responses=_WRITE_ERRORS)
async def note_entered_in_error(
    patient_id: patients.PatientId,
    note_id: NoteId,
    principal: CanWrite,
    patient_service: patients.PatientServiceDep,
    service: NoteServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> NoteSummary:
    """Withdraw a note recorded in error (a draft: its author only, else 403 `note_not_author`;
    a signed one needs `note:sign`); never deleted."""
    gate = await open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.mark_entered_in_error(
        patient_id,
        note_id,
        signer_of(principal),
        may_sign=principal.has(Permission.NOTE_SIGN),
        if_match=if_match,
    )
    _note(audit, "note:entered-in-error", gate, stored)
    return _shown(response, to_summary(stored, patient_id))
