"""The order-set use cases for one tenant: definitions (list, read, create, update with If-Match,
retire, install the shipped starter sets) and instantiation for a patient.

Definitions are PlanDefinitions in the tenant's HAPI partition (:mod:`.definitions`); a key is
unique in the tenant (a conditional create on the key identifier, so installing the starter sets
twice creates nothing the second time). A definition is never deleted: retire sets status
``retired`` (instances keep pointing at it). Instantiation writes the RequestGroup and every
member draft in ONE transaction (:mod:`.flows`): HAPI down → 503 and nothing written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final

import structlog

from ehr.fhir import (
    FhirResourceGone,
    FhirResourceNotFound,
    FhirUpstreamError,
    TenantFhirClient,
    create_entry,
    entry_location,
    iter_entries,
    reference_parts,
    transaction_bundle,
)
from ehr.modules import clinical_record
from ehr.modules.order_sets.definitions import (
    KEY_SYSTEM,
    ORDER_SET_TYPE,
    PLAN_DEFINITION_TYPE_SYSTEM,
    canonical_of,
    is_order_set,
    key_of,
    plan_definition,
    stored_members,
)
from ehr.modules.order_sets.errors import (
    DuplicateMember,
    EmptySelection,
    OrderSetKeyTaken,
    OrderSetNotActive,
    OrderSetRetired,
    OverrideChangesKind,
    OverrideNotSelected,
    PatientSpecificMember,
    UnknownMember,
)
from ehr.modules.order_sets.flows import (
    Instantiation,
    PlannedMember,
    instantiation_bundle,
    member_action,
    order_document,
    validate_order,
)
from ehr.modules.order_sets.schemas import (
    DefinitionStatus,
    InstalledSet,
    InstantiatedOrder,
    InstantiationRequest,
    InstantiationResult,
    OrderSetCreate,
    OrderSetMemberIn,
    OrderSetUpdate,
)
from ehr.modules.order_sets.starter import StarterSet
from ehr.platform.auth.principal import Principal

__all__ = ["OrderSetService", "deep_merge"]

logger = structlog.get_logger(__name__)

_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 5


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied: objects merge key by key, any other value replaces
    (a list is replaced whole; ``null`` removes the field)."""
    merged = dict(base)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(name), Mapping):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def _check_members(members: Sequence[OrderSetMemberIn]) -> None:
    seen: set[str] = set()
    for member in members:
        if member.order.patient_id is not None or member.order.encounter_id is not None:
            raise PatientSpecificMember(
                f"Member '{member.key}' names a patient or an encounter; a definition is for "
                "any patient (instantiate names them).",
                extra={"member": member.key},
            )
        if member.key in seen:
            raise DuplicateMember(
                f"Two members share the key '{member.key}'.", extra={"member": member.key}
            )
        seen.add(member.key)


def _next_version(current: Mapping[str, Any]) -> str:
    value = current.get("version")
    return str(int(value) + 1) if isinstance(value, str) and value.isdigit() else "2"


def _check_version(current: Mapping[str, Any], if_match: str) -> None:
    clinical_record.check_version(
        current, if_match, detail="The order set changed since the version given in If-Match"
    )


class OrderSetService:
    """Order-set definitions and instantiation, bound to one tenant's FHIR partition."""

    def __init__(self, fhir: TenantFhirClient, *, principal: Principal) -> None:
        self._fhir = fhir
        self._principal = principal

    # --- definitions ------------------------------------------------------------------------

    async def list_sets(
        self, statuses: Sequence[DefinitionStatus]
    ) -> tuple[list[dict[str, Any]], bool]:
        """The tenant's order sets with one of ``statuses``, by title; and whether complete."""
        params: list[tuple[str, str]] = [
            ("type", f"{PLAN_DEFINITION_TYPE_SYSTEM}|{ORDER_SET_TYPE}"),
            ("status", ",".join(statuses)),
        ]
        found = await self._fhir.search_all(
            "PlanDefinition", params, page_size=_PAGE_SIZE, max_pages=_MAX_PAGES
        )
        mine = [r for r in found.matches if is_order_set(r) and r.get("status") in statuses]
        return sorted(mine, key=lambda r: str(r.get("title") or "").lower()), found.complete

    async def get(self, set_id: str) -> dict[str, Any]:
        """The order set ``set_id`` (404 for a PlanDefinition that is not an order set)."""
        resource = await self._fhir.read("PlanDefinition", set_id)
        if not is_order_set(resource):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return resource

    def _actions(self, members: Sequence[OrderSetMemberIn]) -> list[dict[str, Any]]:
        _check_members(members)
        return [
            member_action(m.key, m.title, m.selected, m.order, self._principal) for m in members
        ]

    def _resource(
        self,
        payload: OrderSetCreate | OrderSetUpdate | StarterSet,
        *,
        key: str,
        definition_version: str,
        starter: bool,
    ) -> dict[str, Any]:
        return plan_definition(
            key=key,
            title=payload.title,
            description=payload.description,
            status=payload.status,
            definition_version=definition_version,
            actions=self._actions(payload.members),
            sources=payload.sources,
            starter=starter,
        )

    async def _create_unique(self, resources: Sequence[Mapping[str, Any]]) -> list[InstalledSet]:
        """Create each resource unless its key exists (one transaction, conditional creates)."""
        entries = [
            create_entry(r, if_none_exist={"identifier": f"{KEY_SYSTEM}|{key_of(r)}"})
            for r in resources
        ]
        answer = await self._fhir.transaction(transaction_bundle(entries))
        results: list[InstalledSet] = []
        answered = list(answer.get("entry") or [])
        for resource, entry, read in zip(resources, answered, iter_entries(answer), strict=False):
            where = entry_location(entry) if isinstance(entry, Mapping) else None
            if where is None:
                raise FhirUpstreamError("The FHIR server did not say where it stored a set")
            results.append(
                InstalledSet(
                    key=str(key_of(resource)), id=where.resource_id, created=read.status == 201
                )
            )
        if len(results) != len(resources):
            raise FhirUpstreamError("The FHIR server answered fewer entries than it was sent")
        return results

    async def create(self, payload: OrderSetCreate) -> dict[str, Any]:
        """A new order set of the tenant (409 ``order_set_key_taken`` if the key exists)."""
        resource = self._resource(payload, key=payload.key, definition_version="1", starter=False)
        [made] = await self._create_unique([resource])
        if not made.created:
            raise OrderSetKeyTaken(
                f"The tenant already has the order set '{payload.key}'.",
                extra={"order_set_id": made.id},
            )
        logger.info("order_sets.create.completed", resource_id=made.id)
        return await self._fhir.read("PlanDefinition", made.id)

    async def _current(self, set_id: str, if_match: str | None) -> dict[str, Any]:
        checked = clinical_record.require_if_match(if_match)
        current = await self.get(set_id)
        if current.get("status") == "retired":
            raise OrderSetRetired("A retired order set cannot be changed.")
        _check_version(current, checked)
        return current

    async def update(
        self, set_id: str, payload: OrderSetUpdate, *, if_match: str | None
    ) -> dict[str, Any]:
        """Replace the set's content; ``if_match`` must name the current version (428 / 412)."""
        current = await self._current(set_id, if_match)
        key = key_of(current) or set_id
        resource = self._resource(
            payload, key=key, definition_version=_next_version(current), starter=False
        )
        resource["id"] = set_id
        if isinstance(current.get("meta"), Mapping) and current["meta"].get("tag"):
            resource["meta"] = {"tag": current["meta"]["tag"]}  # a starter set stays one
        stored = await self._fhir.update(resource, if_match=if_match)
        logger.info("order_sets.update.completed", resource_id=set_id)
        return stored

    async def retire(self, set_id: str, *, if_match: str | None) -> dict[str, Any]:
        """Retire the set (idempotent: a retired one is returned as it is)."""
        current = await self.get(set_id)
        if current.get("status") == "retired":
            return current
        if_match = clinical_record.require_if_match(if_match)
        _check_version(current, if_match)
        resource = {**current, "status": "retired"}
        stored = await self._fhir.update(resource, if_match=if_match)
        logger.info("order_sets.retire.completed", resource_id=set_id)
        return stored

    async def install(self, sets: Sequence[StarterSet]) -> list[InstalledSet]:
        """Install the starter sets the tenant does not have yet (by key); idempotent."""
        resources = [
            self._resource(s, key=s.key, definition_version=s.version, starter=True) for s in sets
        ]
        installed = await self._create_unique(resources)
        logger.info(
            "order_sets.starter_install.completed",
            tenant=self._fhir.tenant,
            created=sum(1 for i in installed if i.created),
            existing=sum(1 for i in installed if not i.created),
        )
        return installed

    # --- instantiation ----------------------------------------------------------------------

    def plan(
        self, definition: Mapping[str, Any], patient_id: str, request: InstantiationRequest
    ) -> Instantiation:
        """The transaction instantiating ``definition`` for the patient (nothing sent yet)."""
        status = definition.get("status")
        if status == "retired":
            raise OrderSetRetired("A retired order set is not instantiated.")
        if status != "active":
            raise OrderSetNotActive("Only an active order set is instantiated.")
        members = {m.key: m for m in stored_members(definition)}
        chosen = request.members
        if chosen is None:
            chosen = [key for key, m in members.items() if m.selected]
        unknown = [k for k in [*chosen, *request.overrides] if k not in members]
        if unknown:
            raise UnknownMember(
                "The order set has no member " + ", ".join(f"'{k}'" for k in unknown) + ".",
                extra={"members": unknown[:20]},
            )
        not_chosen = [k for k in request.overrides if k not in chosen]
        if not_chosen:
            raise OverrideNotSelected(
                "Overrides name members that are not selected.", extra={"members": not_chosen}
            )
        if not chosen:
            raise EmptySelection("Select at least one member to order.")
        planned: list[PlannedMember] = []
        for key in dict.fromkeys(chosen):
            document = members[key].order or {}
            if request.encounter_id is not None:
                document = {**document, "encounter_id": request.encounter_id}
            changes = request.overrides.get(key)
            if changes is not None:
                if "kind" in changes and changes["kind"] != document.get("kind"):
                    raise OverrideChangesKind(
                        f"The override of '{key}' changes its kind.", extra={"member": key}
                    )
                document = deep_merge(document, changes)
            order = validate_order(document, member=key)
            planned.append(
                PlannedMember(key=key, kind=str(order_document(order)["kind"]), order=order)
            )
        url = definition.get("url")
        version = definition.get("version")
        canonical = url if isinstance(url, str) else canonical_of(key_of(definition) or "")
        if isinstance(version, str):
            canonical = f"{canonical}|{version}"
        title = definition.get("title")
        return instantiation_bundle(
            patient_id=patient_id,
            instantiates=canonical,
            title=title if isinstance(title, str) else None,
            members=planned,
            requester=self._principal,
        )

    async def _check_encounter(self, patient_id: str, encounter_id: str) -> None:
        """The encounter is the patient's (422 ``patient_mismatch`` otherwise, as for a body
        naming another patient; a missing encounter is 422 too: it is the body that is wrong)."""
        try:
            encounter = await self._fhir.read("Encounter", encounter_id)
        except (FhirResourceNotFound, FhirResourceGone):
            encounter = {}
        parts = reference_parts((encounter.get("subject") or {}).get("reference"))
        if parts is None or (parts.resource_type, parts.resource_id) != ("Patient", patient_id):
            raise clinical_record.PatientMismatch(
                "The encounter is not one of this patient's.", extra={"field": "encounter_id"}
            )

    async def definition_for(
        self, set_id: str, patient_id: str, request: InstantiationRequest
    ) -> dict[str, Any]:
        """What instantiation reads before it writes: the definition and, when named, the
        patient's encounter (read together; nothing here writes)."""
        if request.encounter_id is None:
            return await self.get(set_id)
        read, _ = await asyncio.gather(
            self.get(set_id), self._check_encounter(patient_id, request.encounter_id)
        )
        definition: dict[str, Any] = read
        return definition

    async def instantiate(
        self,
        set_id: str,
        patient_id: str,
        request: InstantiationRequest,
        *,
        definition: Mapping[str, Any] | None = None,
    ) -> InstantiationResult:
        """Instantiate the set for the patient: ONE transaction (RequestGroup + member drafts).

        ``definition`` is what :meth:`definition_for` read (the router reads it while the
        patient gate runs); without it, it is read here."""
        if definition is None:
            definition = await self.definition_for(set_id, patient_id, request)
        planned = self.plan(definition, patient_id, request)
        answer = await self._fhir.transaction(planned.bundle)
        locations = [entry_location(e) for e in answer.get("entry") or [] if isinstance(e, Mapping)]
        if len(locations) != 1 + len(planned.members) or any(w is None for w in locations):
            raise FhirUpstreamError("The FHIR server did not say where it stored the orders")
        group, *made = [w for w in locations if w is not None]
        result = InstantiationResult(
            request_group_id=group.resource_id,
            order_set_id=set_id,
            instantiates=planned.instantiates,
            group_identifier=planned.group_identifier,
            orders=[
                InstantiatedOrder(
                    member=m.key, kind=m.kind, resource_type=w.resource_type, id=w.resource_id
                )
                for m, w in zip(planned.members, made, strict=True)
            ],
        )
        logger.info(
            "order_sets.instantiate.completed",
            resource_id=group.resource_id,
            order_set_id=set_id,
            orders=len(made),
        )
        return result
