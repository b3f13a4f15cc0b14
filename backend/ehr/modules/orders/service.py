"""The orders use cases for one tenant: drafts, reads, the lifecycle's transitions and the sign's
writes, each write one FHIR interaction or one transaction (ADR 0020).

Rules (each refusal a 4xx problem with a stable ``code``):

- An order's subject is the path's patient; another patient's order is 404 as if missing. The
  encounter must be the patient's (422 ``order_encounter_invalid``), a performer must exist in
  the tenant (422 ``order_reference_invalid``): the tenant-bound client cannot see another
  tenant's resources, so they are "not found" too.
- Only a draft is edited (409 ``order_not_draft``), with a document of its own kind (422
  ``order_kind_mismatch``) and ``If-Match`` (428 without, 412 when stale).
- Every transition (:mod:`.lifecycle`) is one transaction: the order's update, versioned by
  ``request.ifMatch`` on the version read (or the caller's If-Match), and its Provenance — so of
  two clinicians acting on the same order at once exactly one succeeds (the other gets 412/409
  and nothing of its act is stored). Signing adds a DetectedIssue per overridden finding.
- Signing a medication order, or resuming one, needs ``medication:prescribe`` besides
  ``order:place`` (403 ``medication_prescribe_required``): nurses never sign medication orders.
  Marking a placed order entered-in-error needs ``order:place`` (a draft: ``order:draft``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog

from ehr.core.errors import PermissionDenied
from ehr.fhir import (
    FhirResourceGone,
    FhirResourceNotFound,
    TenantFhirClient,
    bundle_resources,
    create_entry,
    entry_location,
    transaction_bundle,
    update_entry,
    version_id,
)
from ehr.modules import clinical_record
from ehr.modules.clinical_record import recorder_reference
from ehr.modules.orders.drafts import CATEGORY_IMAGING, CATEGORY_LAB, CATEGORY_REFERRAL, build_draft
from ehr.modules.orders.errors import (
    MedicationSignNotPermitted,
    OrderEncounterInvalid,
    OrderKindMismatch,
    OrderNotDraft,
    OrderReferenceInvalid,
)
from ehr.modules.orders.findings import PLACED_STATUSES, SignDecision, detected_issue
from ehr.modules.orders.lifecycle import (
    Action,
    api_status,
    check_transition,
    fhir_statuses,
    transition_provenance,
    transitioned,
)
from ehr.modules.orders.schemas import (
    ORDER_STATUSES,
    OrderCreate,
    OrderKind,
    Override,
    PerformerIn,
    ReferralOrderCreate,
)
from ehr.modules.orders.views import is_order_of, kind_of, parse_order_id
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["OrderService", "SignWrite", "Transitioned"]

logger = structlog.get_logger(__name__)

_SNOMED: Final = "http://snomed.info/sct"
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 5
_STALE: Final = "The order changed since the version given in If-Match"
_CATEGORY_OF: Final = {
    "lab": CATEGORY_LAB,
    "imaging": CATEGORY_IMAGING,
    "referral": CATEGORY_REFERRAL,
}


@dataclass(frozen=True, slots=True)
class Transitioned:
    """An order after a transition, and the Provenance that records it."""

    order: dict[str, Any]
    provenance: str | None


@dataclass(frozen=True, slots=True)
class SignWrite(Transitioned):
    """A signed order, its Provenance and the DetectedIssues of the overridden findings."""

    detected_issues: tuple[str, ...] = ()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OrderService:
    """The order use cases for one tenant (the router has opened the patient's chart)."""

    def __init__(self, fhir: TenantFhirClient, *, principal: Principal) -> None:
        self._fhir = fhir
        self._principal = principal

    @property
    def fhir(self) -> TenantFhirClient:
        return self._fhir

    @property
    def principal(self) -> Principal:
        return self._principal

    # ------------------------------------------------------------------ reads

    async def get(self, patient_id: str, order_id: str) -> dict[str, Any]:
        """The order ``order_id`` (``<Type>-<id>``) of the patient (404 otherwise)."""
        resource_type, fhir_id = parse_order_id(order_id)
        resource = await self._fhir.read(resource_type, fhir_id)
        if not is_order_of(resource, patient_id):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return resource

    async def orders_of(
        self,
        patient_id: str,
        *,
        statuses: Sequence[str] = (),
        kinds: Sequence[OrderKind] = (),
    ) -> tuple[list[dict[str, Any]], bool]:
        """The patient's orders (both resource types, filtered), and whether the read was
        complete. Entered-in-error orders only when asked for by status."""
        wanted = set(kinds)
        service_kinds = (
            sorted(wanted - {"medication"}) if wanted else ["lab", "imaging", "referral"]
        )
        found: list[dict[str, Any]] = []
        complete = True
        searches: list[tuple[str, list[tuple[str, str]]]] = []
        if service_kinds:
            params = [("subject", f"Patient/{patient_id}")]
            if wanted:
                categories = ",".join(f"{_SNOMED}|{_CATEGORY_OF[k][0]}" for k in service_kinds)
                params.append(("category", categories))
            searches.append(("ServiceRequest", params))
        if not wanted or "medication" in wanted:
            searches.append(("MedicationRequest", [("subject", f"Patient/{patient_id}")]))
        for resource_type, params in searches:
            chosen = statuses or [s for s in ORDER_STATUSES if s != "entered-in-error"]
            codes = sorted({c for s in chosen for c in fhir_statuses(resource_type, s)})
            result = await self._fhir.search_all(
                resource_type,
                [*params, ("status", ",".join(codes))],
                page_size=_PAGE_SIZE,
                max_pages=_MAX_PAGES,
            )
            complete = complete and result.complete
            found += [
                r
                for r in result.matches
                if is_order_of(r, patient_id) and (not wanted or kind_of(r) in wanted)
            ]
        return found, complete

    async def recent_orders(
        self, patient_id: str, order: dict[str, Any], *, code_field: str, since: dt.datetime
    ) -> list[dict[str, Any]]:
        """The patient's placed ServiceRequests with ``order``'s code authored since ``since``
        (the duplicate check's candidates; one bounded search)."""
        concept = order.get(code_field)
        codes = [
            f"{c['system']}|{c['code']}"
            for c in (concept.get("coding") or [] if isinstance(concept, dict) else [])
            if isinstance(c, dict) and c.get("system") and c.get("code")
        ]
        if not codes:
            return []
        search = "code" if code_field == "code" else "performer-type"
        result = await self._fhir.search_all(
            "ServiceRequest",
            [
                ("subject", f"Patient/{patient_id}"),
                (search, ",".join(codes[:5])),
                ("status", ",".join(sorted(PLACED_STATUSES))),
                ("authored", f"ge{since.isoformat(timespec='seconds')}"),
            ],
            page_size=50,
            max_pages=2,
        )
        return [r for r in result.matches if is_order_of(r, patient_id)]

    # ------------------------------------------------------------------ drafts

    async def create(self, patient_id: str, payload: OrderCreate) -> dict[str, Any]:
        """A new draft (rules: module doc)."""
        draft = build_draft(patient_id, payload, self._principal)
        await self._check_references(patient_id, payload)
        stored = await self._fhir.create(draft)
        logger.info(
            "orders.draft.created",
            resource_type=stored.get("resourceType"),
            resource_id=stored.get("id"),
            tenant=self._fhir.tenant,
        )
        return stored

    async def update(
        self, patient_id: str, order_id: str, payload: OrderCreate, *, if_match: str | None
    ) -> dict[str, Any]:
        """Replace a draft's content (same kind; ``if_match`` the version read)."""
        if_match = clinical_record.require_if_match(if_match)
        current = await self.get(patient_id, order_id)
        if api_status(current) != "draft":
            raise OrderNotDraft(
                "A signed order is changed by its transitions (hold, revoke ...), not edited.",
                extra={"order_status": api_status(current) or current.get("status")},
            )
        if kind_of(current) != payload.kind:
            raise OrderKindMismatch(
                f"The order is a {kind_of(current)} order; the document is {payload.kind}."
            )
        clinical_record.check_version(current, if_match, detail=_STALE)
        rebuilt = build_draft(patient_id, payload, self._principal)
        await self._check_references(patient_id, payload)
        rebuilt["id"] = current["id"]
        rebuilt["requester"] = current.get("requester", rebuilt["requester"])
        meta = current.get("meta")
        if isinstance(meta, dict):
            rebuilt["meta"] = {
                k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated", "source")
            }
        stored = await self._fhir.update(rebuilt, if_match=if_match)
        logger.info("orders.draft.updated", resource_id=current["id"], tenant=self._fhir.tenant)
        return stored

    async def _check_references(self, patient_id: str, payload: OrderCreate) -> None:
        if payload.encounter_id is not None:
            try:
                encounter = await self._fhir.read("Encounter", payload.encounter_id)
            except (FhirResourceNotFound, FhirResourceGone):
                raise OrderEncounterInvalid(
                    "The encounter does not exist.", extra={"encounter_id": payload.encounter_id}
                ) from None
            if not is_order_of(encounter, patient_id):
                raise OrderEncounterInvalid(
                    "The encounter belongs to another patient.",
                    extra={"encounter_id": payload.encounter_id},
                )
        if isinstance(payload, ReferralOrderCreate) and payload.performer is not None:
            await self._check_performer(payload.performer)

    async def _check_performer(self, performer: PerformerIn) -> None:
        if performer.reference is None:
            return
        resource_type, _, resource_id = performer.reference.partition("/")
        try:
            await self._fhir.read(resource_type, resource_id)
        except (FhirResourceNotFound, FhirResourceGone):
            raise OrderReferenceInvalid(
                "The performer does not exist.", extra={"reference": performer.reference}
            ) from None

    # ------------------------------------------------------------------ transitions

    def check_may(self, current: dict[str, Any], action: Action) -> None:
        """The permission rules beyond the route's (module doc)."""
        if (
            action in ("sign", "resume")
            and kind_of(current) == "medication"
            and not self._principal.has(Permission.MEDICATION_PRESCRIBE)
        ):
            raise MedicationSignNotPermitted(
                "Signing or resuming a medication order needs medication:prescribe."
            )
        if (
            action == "entered-in-error"
            and api_status(current) != "draft"
            and not self._principal.has(Permission.ORDER_PLACE)
        ):
            raise PermissionDenied("Only a clinician who places orders may mark this one.")

    def signable(self, current: dict[str, Any], if_match: str | None) -> str:
        """The version a sign writes on (``If-Match`` is required: sign what you read)."""
        if_match = clinical_record.require_if_match(
            if_match, "Send If-Match with the version you reviewed (its ETag)."
        )
        self.check_may(current, "sign")
        check_transition(current, "sign", None)
        clinical_record.check_version(current, if_match, detail=_STALE)
        return if_match

    async def transition(
        self,
        patient_id: str,
        order_id: str,
        action: Action,
        *,
        reason: str | None,
        if_match: str | None,
    ) -> Transitioned:
        """Hold, resume, revoke, complete or mark entered-in-error (one transaction)."""
        current = await self.get(patient_id, order_id)
        self.check_may(current, action)
        now = _now()
        actor = recorder_reference(self._principal)
        updated = transitioned(current, action, reason=reason, actor=actor, now=now)
        if if_match is not None:
            clinical_record.check_version(current, if_match, detail=_STALE)
        version = if_match or version_id(current)
        reference = f"{current['resourceType']}/{current['id']}"
        provenance = transition_provenance(action, reference, actor, now, reason=reason)
        stored, refs = await self._write(updated, version, [provenance])
        logger.info(
            "orders.transition.completed",
            action=action,
            resource_id=current["id"],
            tenant=self._fhir.tenant,
        )
        return Transitioned(order=stored, provenance=refs.get("Provenance", [None])[0])

    async def commit_sign(
        self,
        current: dict[str, Any],
        version: str,
        decision: SignDecision,
        override: Override | None,
        *,
        patient_id: str,
        now: dt.datetime,
    ) -> SignWrite:
        """The sign's one transaction: the order active (versioned), its Provenance and a
        DetectedIssue per overridden finding."""
        signer = recorder_reference(self._principal)
        signed = transitioned(current, "sign", reason=None, actor=signer, now=now)
        reference = f"{current['resourceType']}/{current['id']}"
        reason = override.reason if override is not None else None
        extra: list[dict[str, Any]] = [
            transition_provenance("sign", reference, signer, now, reason=reason)
        ]
        if decision.overridden and reason is not None:
            extra += [
                detected_issue(
                    finding,
                    order_reference=reference,
                    patient_id=patient_id,
                    signer=signer,
                    reason=reason,
                    now=now,
                )
                for finding in decision.overridden
            ]
        stored, refs = await self._write(signed, version, extra)
        logger.info(
            "orders.sign.completed",
            resource_id=current["id"],
            overridden=len(decision.overridden),
            tenant=self._fhir.tenant,
        )
        return SignWrite(
            order=stored,
            provenance=refs.get("Provenance", [None])[0],
            detected_issues=tuple(r for r in refs.get("DetectedIssue", []) if r),
        )

    async def _write(
        self, order: dict[str, Any], version: str | None, created: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, list[str | None]]]:
        """One transaction: the order's versioned update and the resources it creates; the
        stored order and the references of what was created, by type."""
        bundle = transaction_bundle(
            [update_entry(order, if_match=version), *(create_entry(r) for r in created)]
        )
        answer = await self._fhir.transaction(bundle, return_resources=True)
        stored = next(
            (
                r
                for r in bundle_resources(answer, str(order["resourceType"]))
                if r.get("id") == order["id"]
            ),
            order,
        )
        refs: dict[str, list[str | None]] = {}
        entries = answer.get("entry") or []
        for index, resource in enumerate(created, start=1):
            entry = entries[index] if index < len(entries) else {}
            where = entry_location(entry) if isinstance(entry, dict) else None
            refs.setdefault(str(resource["resourceType"]), []).append(
                f"{where.resource_type}/{where.resource_id}" if where is not None else None
            )
        return stored, refs
