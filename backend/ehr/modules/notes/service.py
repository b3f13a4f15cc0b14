"""The notes use cases for one tenant: read, write drafts, and the signature acts, each act one
FHIR transaction with its Provenance (ADR 0018).

The rules themselves are pure functions (:mod:`ehr.modules.notes.lifecycle`, the Provenance
builders in :mod:`ehr.modules.notes.provenance`); this module reads, checks the references and
writes. Every signature act (sign, co-sign, amend, addendum) posts ONE transaction: the
DocumentReference write, versioned on the version read (``request.ifMatch``), and its
Provenance — so of two clinicians signing at once exactly one signs (the other gets 412/409 and
nothing of its act is stored), and a note is never signed without its provenance record.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

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
from ehr.modules.clinical_record import ListCursors
from ehr.modules.notes.documents import Signer, doc_status, is_released, subject_is
from ehr.modules.notes.errors import NoteEncounterInvalid, NoteNotFound
from ehr.modules.notes.lifecycle import (
    addendum_of,
    amendment_of,
    cosigned,
    draft_note,
    entered_in_error,
    signed,
    updated_draft,
)
from ehr.modules.notes.paging import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    NoteCursor,
    list_scope,
    open_cursor,
    query_instant,
    seal_cursor,
    sort_key,
)
from ehr.modules.notes.provenance import SignatureAct, note_provenance
from ehr.modules.notes.schemas import NoteAddendum, NoteAmend, NoteCreate, NoteUpdate
from ehr.modules.notes.templates import NoteTemplateDef

__all__ = ["NotePage", "NoteService"]

logger = structlog.get_logger(__name__)

# HAPI pages read at most for one page of the list (filters drop notes a page cannot show).
_MAX_PAGES = 10


@dataclass(frozen=True, slots=True)
class NotePage:
    """One page of a patient's notes and the cursor of the next (None: the last page)."""

    notes: builtins.list[dict[str, Any]]
    next: str | None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _appends(resource: Mapping[str, Any]) -> bool:
    return any(
        isinstance(r, Mapping) and r.get("code") == "appends"
        for r in resource.get("relatesTo") or []
    )


class NoteService:
    """The notes use cases for one tenant; ``released_only`` for a patient's own view."""

    def __init__(self, fhir: TenantFhirClient, *, released_only: bool = False) -> None:
        self._fhir = fhir
        self._released_only = released_only

    async def list(
        self,
        patient_id: str,
        *,
        status: str | None = None,
        cursors: ListCursors,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> NotePage:
        """One page of the patient's notes, newest first (see :mod:`~.paging`); patients see
        released ones only. ``next`` is the cursor of the page after, None on the last one."""
        scope = list_scope(status, self._released_only)
        after = open_cursor(cursors, scope, patient_id, cursor) if cursor is not None else None
        params = [
            ("subject", f"Patient/{patient_id}"),
            ("_sort", "-date"),
            ("_count", str(min(MAX_LIMIT, limit + 1))),
        ]
        if after is not None and after[0]:
            params.append(("date", f"le{query_instant(after[0])}"))
        page: dict[str, Any] | None = await self._fhir.search("DocumentReference", params)
        found: dict[str, dict[str, Any]] = {}
        pages = 0
        while page is not None:
            pages += 1
            raw = bundle_resources(page, "DocumentReference")
            for resource in raw:
                if self._shown_in_list(resource, patient_id, status, after):
                    found[str(resource.get("id", ""))] = resource
            boundary = sorted(map(sort_key, found.values()), reverse=True)
            # Enough for a page and the tie group of the page's last date read whole.
            if len(boundary) > limit and raw and sort_key(raw[-1])[0] < boundary[limit][0]:
                break
            if pages >= _MAX_PAGES:
                break
            page = await self._fhir.next_page(page)
        notes = sorted(found.values(), key=sort_key, reverse=True)
        shown = notes[:limit]
        more = len(notes) > limit
        last = sort_key(shown[-1]) if more and shown else None
        return NotePage(
            shown, seal_cursor(cursors, scope, patient_id, last) if last is not None else None
        )

    def _shown_in_list(
        self,
        resource: Mapping[str, Any],
        patient_id: str,
        status: str | None,
        after: NoteCursor | None,
    ) -> bool:
        if not subject_is(resource, patient_id):
            return False
        if self._released_only and not is_released(resource):
            return False
        if status is not None and doc_status(resource) != status:
            return False
        return after is None or sort_key(resource) < after

    async def get(self, patient_id: str, note_id: str) -> dict[str, Any]:
        """The note, if it is this patient's (and, for a patient, released); else 404."""
        resource = await self._fhir.read("DocumentReference", note_id)
        if not subject_is(resource, patient_id) or (
            self._released_only and not is_released(resource)
        ):
            raise NoteNotFound("The note does not exist")
        return resource

    async def create(
        self,
        patient_id: str,
        payload: NoteCreate,
        author: Signer,
        *,
        template: NoteTemplateDef | None = None,
    ) -> dict[str, Any]:
        """A new draft from ``template`` (default: the shipped one of ``payload.kind``); its
        encounter, if any, must be this patient's."""
        if payload.encounter_id is not None:
            await self._check_encounter(patient_id, payload.encounter_id)
        draft = draft_note(patient_id, payload, author, _utc_now(), template=template)
        stored = await self._fhir.create(draft)
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
        """Sign the draft and record the signature, versioned on the version read."""
        current = await self.get(patient_id, note_id)
        act: SignatureAct = "sign-addendum" if _appends(current) else "sign"
        now = _utc_now()
        stored = await self._update_with_provenance(
            signed(current, signer, now), act, signer, now, if_match or version_id(current)
        )
        logger.info("notes.sign.completed", resource_id=note_id, tenant=self._fhir.tenant)
        return stored

    async def cosign(
        self, patient_id: str, note_id: str, cosigner: Signer, *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Co-sign a signed note that requires it (another physician than the signer)."""
        current = await self.get(patient_id, note_id)
        now = _utc_now()
        stored = await self._update_with_provenance(
            cosigned(current, cosigner, now),
            "cosign",
            cosigner,
            now,
            if_match or version_id(current),
        )
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
        """The amendment (a new signed note), the old one superseded, and the amendment's
        Provenance: one transaction, the old note versioned (``ifMatch``)."""
        old = await self.get(patient_id, note_id)
        now = _utc_now()
        new, superseded = amendment_of(old, payload, signer, now)
        version = if_match or version_id(old)
        new_url = new_full_url()
        provenance = note_provenance(
            "amend", new_url, signer, now, related=f"DocumentReference/{note_id}"
        )
        bundle = transaction_bundle(
            [
                create_entry(new, full_url=new_url),
                update_entry(superseded, if_match=version),
                create_entry(provenance),
            ]
        )
        stored = await self._new_note_of(bundle, not_id=note_id)
        logger.info(
            "notes.amend.completed",
            resource_id=stored.get("id"),
            replaces=note_id,
            tenant=self._fhir.tenant,
        )
        return stored

    async def add_addendum(
        self, patient_id: str, note_id: str, payload: NoteAddendum, author: Signer
    ) -> dict[str, Any]:
        """A new draft appending to the signed note, and its Provenance (one transaction)."""
        target = await self.get(patient_id, note_id)
        now = _utc_now()
        new_url = new_full_url()
        provenance = note_provenance(
            "addendum", new_url, author, now, related=f"DocumentReference/{note_id}"
        )
        bundle = transaction_bundle(
            [
                create_entry(addendum_of(target, payload, author, now), full_url=new_url),
                create_entry(provenance),
            ]
        )
        stored = await self._new_note_of(bundle, not_id=note_id)
        logger.info(
            "notes.addendum.completed",
            resource_id=stored.get("id"),
            appends=note_id,
            tenant=self._fhir.tenant,
        )
        return stored

    async def provenance(self, note_id: str) -> builtins.list[dict[str, Any]]:
        """The Provenance records whose target is the note (any of its versions)."""
        bundle = await self._fhir.search(
            "Provenance",
            [("target", f"DocumentReference/{note_id}"), ("_sort", "recorded"), ("_count", "50")],
        )
        return bundle_resources(bundle, "Provenance")

    async def _update_with_provenance(
        self,
        updated: dict[str, Any],
        act: SignatureAct,
        signer: Signer,
        now: dt.datetime,
        version: str | None,
    ) -> dict[str, Any]:
        note_id = str(updated["id"])
        provenance = note_provenance(act, f"DocumentReference/{note_id}", signer, now)
        bundle = transaction_bundle(
            [update_entry(updated, if_match=version), create_entry(provenance)]
        )
        answer = await self._fhir.transaction(bundle, return_resources=True)
        for resource in bundle_resources(answer, "DocumentReference"):
            if resource.get("id") == note_id:
                return resource
        raise NoteNotFound("The note was not returned")  # pragma: no cover - HAPI returns it

    async def _new_note_of(self, bundle: dict[str, Any], *, not_id: str) -> dict[str, Any]:
        answer = await self._fhir.transaction(bundle, return_resources=True)
        for resource in bundle_resources(answer, "DocumentReference"):
            if resource.get("id") != not_id:
                return resource
        raise NoteNotFound("The new note was not returned")  # pragma: no cover - HAPI returns it

    async def _check_encounter(self, patient_id: str, encounter_id: str) -> None:
        try:
            encounter = await self._fhir.read("Encounter", encounter_id)
        except (FhirResourceNotFound, FhirResourceGone):
            raise NoteEncounterInvalid(
                "The encounter does not exist.", extra={"encounter_id": encounter_id}
            ) from None
        if not subject_is(encounter, patient_id):
            raise NoteEncounterInvalid(
                "The encounter belongs to another patient.", extra={"encounter_id": encounter_id}
            )
