"""The order-set workflows that call the orders module (ADR 0016: the caller's ``flows.py``).

Both go through the orders module's public surface only: ``orders.OrderCreate`` validates a
member's document and ``orders.build_draft`` turns it into the draft ServiceRequest /
MedicationRequest a hand-entered order would be. Nothing here re-implements an order rule.

- :func:`member_action` — a definition's member as a PlanDefinition action: its code and title
  read off the draft the document builds (so a document that cannot become an order is refused
  when the definition is written, with the orders module's own 422 code).
- :func:`instantiation_bundle` — one transaction: the RequestGroup and every member draft,
  linked by ``urn:uuid`` full URLs and one shared group identifier (ADR 0021).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from ehr.fhir import codings, concept_text, create_entry, new_full_url, transaction_bundle
from ehr.modules import clinical_record, orders
from ehr.modules.order_sets.definitions import member_action as action_of
from ehr.modules.order_sets.errors import OrderSetMemberInvalid
from ehr.platform.auth.principal import Principal

__all__ = [
    "GROUP_IDENTIFIER_SYSTEM",
    "PREVIEW_PATIENT_ID",
    "Instantiation",
    "PlannedMember",
    "instantiation_bundle",
    "member_action",
    "order_document",
    "validate_order",
]

# The patient a definition's member is previewed for (the draft is built, read, and dropped).
PREVIEW_PATIENT_ID: Final = "order-set-preview"
GROUP_IDENTIFIER_SYSTEM: Final = "urn:ehr:order-set-instance"
_ORDER: Final[TypeAdapter[Any]] = TypeAdapter(orders.OrderCreate)


def validate_order(document: Mapping[str, Any], *, member: str) -> Any:
    """``document`` validated with the orders schema (``orders.OrderCreate``); 422
    :class:`OrderSetMemberInvalid` naming the member and the failing fields otherwise."""
    try:
        return _ORDER.validate_python(dict(document))
    except ValidationError as exc:
        errors = [
            {
                "loc": ["members", member, *(str(p) for p in e["loc"])],
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise OrderSetMemberInvalid(
            f"The order of member '{member}' does not validate as an order.",
            extra={"member": member, "errors": errors[:20]},
        ) from None


def order_document(order: Any) -> dict[str, Any]:
    """The JSON document of a validated order (what a definition stores)."""
    dumped = _ORDER.dump_python(order, mode="json", exclude_none=True)
    if not isinstance(dumped, dict):  # pragma: no cover - OrderCreate is a model union
        raise TypeError("an order document is a JSON object")
    return dumped


def _order_concept(draft: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for name in ("code", "medicationCodeableConcept"):
        concept = draft.get(name)
        if isinstance(concept, Mapping):
            return concept
    return None


def member_action(
    key: str, title: str | None, selected: bool, order: Any, requester: Principal
) -> dict[str, Any]:
    """The PlanDefinition action of a member: the draft its order builds gives the action's code
    and default title (orders' own refusals — an unknown code — surface here as 422)."""
    draft = orders.build_draft(PREVIEW_PATIENT_ID, order, requester)
    concept = _order_concept(draft)
    first = codings(concept, limit=1)
    code: dict[str, Any] | None = None
    if first:
        code = {
            "coding": [
                {
                    k: v
                    for k, v in (
                        ("system", first[0].system),
                        ("code", first[0].code),
                        ("display", first[0].display),
                    )
                    if v is not None
                }
            ]
        }
    shown = title or concept_text(concept) or (first[0].display if first else None) or key
    return action_of(key, shown, selected, order_document(order), code)


@dataclass(frozen=True, slots=True)
class PlannedMember:
    """A member chosen for instantiation: its key and its validated order."""

    key: str
    kind: str
    order: Any


@dataclass(frozen=True, slots=True)
class Instantiation:
    """The transaction and what reading its answer needs (entry i+1 is member i)."""

    bundle: dict[str, Any]
    group_identifier: str
    instantiates: str
    members: tuple[PlannedMember, ...]


def _link(draft: dict[str, Any], identifier: Mapping[str, str], instantiates: str) -> None:
    """Tie a member draft to its group: FHIR R4 has no ``basedOn`` → RequestGroup for these
    requests, so the shared requisition (ServiceRequest) / groupIdentifier (MedicationRequest)
    and ``instantiatesCanonical`` carry the link."""
    field = "groupIdentifier" if draft.get("resourceType") == "MedicationRequest" else "requisition"
    draft[field] = dict(identifier)
    canonicals = [c for c in draft.get("instantiatesCanonical") or [] if c != instantiates]
    draft["instantiatesCanonical"] = [*canonicals, instantiates]


def instantiation_bundle(
    *,
    patient_id: str,
    instantiates: str,
    title: str | None,
    members: Sequence[PlannedMember],
    requester: Principal,
    now: dt.datetime | None = None,
) -> Instantiation:
    """The transaction creating the RequestGroup (draft, intent order) and every member draft."""
    identifier = {"system": GROUP_IDENTIFIER_SYSTEM, "value": str(uuid.uuid4())}
    authored = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    group_url = new_full_url()
    entries: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for member in members:
        draft = dict(orders.build_draft(patient_id, member.order, requester))
        _link(draft, identifier, instantiates)
        full_url = new_full_url()
        entries.append(create_entry(draft, full_url=full_url))
        action: dict[str, Any] = {"id": member.key, "resource": {"reference": full_url}}
        concept = _order_concept(draft)
        shown = concept_text(concept) or next(
            (c.display for c in codings(concept) if c.display), None
        )
        if shown:
            action["title"] = shown
        actions.append(action)
    group: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "instantiatesCanonical": [instantiates],
        "groupIdentifier": identifier,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
        "author": clinical_record.recorder_reference(requester),
        "action": actions,
    }
    if title:
        group["note"] = [{"text": f"Order set: {title}"}]
    bundle = transaction_bundle([create_entry(group, full_url=group_url), *entries])
    return Instantiation(
        bundle=bundle,
        group_identifier=f"{identifier['system']}|{identifier['value']}",
        instantiates=instantiates,
        members=tuple(members),
    )
