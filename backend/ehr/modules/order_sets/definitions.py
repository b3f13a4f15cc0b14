"""An order set as a FHIR PlanDefinition (type ``order-set``), and back (ADR 0021).

The form, chosen to be FHIR-faithful and to keep one truth per member::

    PlanDefinition
      url          urn:ehr:order-set:{key}     (canonical; instances name it with |version)
      identifier   urn:ehr:order-set|{key}     (unique per tenant: the install's condition)
      version      "1", "2", ...               (raised by each update)
      type         plan-definition-type#order-set
      status       draft | active | retired
      relatedArtifact[]  type citation: the set's sources
      action[]     one per member:
        id                 the member key
        title, code        what a FHIR reader needs to know the order (code as the order codes it)
        type               action-type#create
        precheckBehavior   yes | no (pre-selected on instantiate)
        extension          urn:ehr:fhir:extension:order-set-member-order: valueAttachment,
                           application/json: the member's order document (``orders.OrderCreate``)

The member's order document is the definition: instantiate validates it with the orders schema
and builds the draft with ``orders.build_draft``, exactly as a hand-entered order. The action's
``code`` and ``title`` are derived from that document (through the draft it builds) so FHIR
readers see what each action orders without knowing our document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.fhir import codings, concept_text, identifiers, version_id
from ehr.modules.order_sets.schemas import OrderSet, OrderSetMember, Source

__all__ = [
    "ACTION_TYPE_SYSTEM",
    "CANONICAL_PREFIX",
    "KEY_SYSTEM",
    "MEMBER_ORDER_EXTENSION",
    "ORDER_SET_TYPE",
    "ORIGIN_SYSTEM",
    "PLAN_DEFINITION_TYPE_SYSTEM",
    "StoredMember",
    "canonical_of",
    "is_order_set",
    "key_of",
    "member_action",
    "plan_definition",
    "stored_members",
    "to_order_set",
]

PLAN_DEFINITION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
ORDER_SET_TYPE: Final = "order-set"
ACTION_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/action-type"
KEY_SYSTEM: Final = "urn:ehr:order-set"
CANONICAL_PREFIX: Final = "urn:ehr:order-set:"
ORIGIN_SYSTEM: Final = "urn:ehr:order-set-origin"
STARTER_ORIGIN: Final = "starter"
MEMBER_ORDER_EXTENSION: Final = "urn:ehr:fhir:extension:order-set-member-order"
JSON_CONTENT_TYPE: Final = "application/json"


class StoredMember:
    """A member read from an action: its key, title, pre-selection and order document
    (``None`` when the action carries no readable document)."""

    __slots__ = ("code", "key", "order", "selected", "title")

    def __init__(
        self,
        key: str,
        title: str,
        selected: bool,
        order: dict[str, Any] | None,
        code: dict[str, Any] | None,
    ) -> None:
        self.key = key
        self.title = title
        self.selected = selected
        self.order = order
        self.code = code


def _pascal(key: str) -> str:
    """PlanDefinition.name (``[A-Z]([A-Za-z0-9_]){0,254}``) from a key."""
    name = "".join(part.capitalize() for part in key.split("-") if part)
    return name if name[:1].isalpha() else f"OrderSet{name}"


def _type_concept() -> dict[str, Any]:
    return {
        "coding": [
            {"system": PLAN_DEFINITION_TYPE_SYSTEM, "code": ORDER_SET_TYPE, "display": "Order Set"}
        ]
    }


def _order_attachment(order: Mapping[str, Any]) -> dict[str, Any]:
    data = json.dumps(order, separators=(",", ":"), sort_keys=True).encode()
    return {"contentType": JSON_CONTENT_TYPE, "data": base64.b64encode(data).decode("ascii")}


def member_action(
    key: str,
    title: str,
    selected: bool,
    order: Mapping[str, Any],
    code: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The PlanDefinition action of one member (module doc)."""
    action: dict[str, Any] = {
        "id": key,
        "extension": [{"url": MEMBER_ORDER_EXTENSION, "valueAttachment": _order_attachment(order)}],
        "title": title,
        "type": {"coding": [{"system": ACTION_TYPE_SYSTEM, "code": "create"}]},
        "precheckBehavior": "yes" if selected else "no",
    }
    if code is not None:
        action["code"] = [dict(code)]
    return action


def plan_definition(
    *,
    key: str,
    title: str,
    description: str | None,
    status: str,
    definition_version: str,
    actions: Sequence[Mapping[str, Any]],
    sources: Sequence[Source],
    starter: bool = False,
) -> dict[str, Any]:
    """The PlanDefinition of an order set (module doc)."""
    resource: dict[str, Any] = {
        "resourceType": "PlanDefinition",
        "url": canonical_of(key),
        "identifier": [{"system": KEY_SYSTEM, "value": key}],
        "version": definition_version,
        "name": _pascal(key),
        "title": title,
        "type": _type_concept(),
        "status": status,
        "action": [dict(a) for a in actions],
    }
    if starter:
        resource["meta"] = {"tag": [{"system": ORIGIN_SYSTEM, "code": STARTER_ORIGIN}]}
    if description is not None:
        resource["description"] = description
    if sources:
        resource["relatedArtifact"] = [
            {"type": "citation", "citation": s.citation, **({"url": s.url} if s.url else {})}
            for s in sources
        ]
    return resource


def canonical_of(key: str) -> str:
    """The canonical URL of the set ``key``."""
    return f"{CANONICAL_PREFIX}{key}"


def is_order_set(resource: Mapping[str, Any]) -> bool:
    """A PlanDefinition of type order-set (other PlanDefinitions of the tenant are not ours)."""
    return resource.get("resourceType") == "PlanDefinition" and any(
        c.system == PLAN_DEFINITION_TYPE_SYSTEM and c.code == ORDER_SET_TYPE
        for c in codings(resource.get("type"))
    )


def key_of(resource: Mapping[str, Any]) -> str | None:
    """The set's key (its identifier in :data:`KEY_SYSTEM`)."""
    for ident in identifiers(resource):
        if ident.system == KEY_SYSTEM:
            return ident.value
    return None


def _is_starter(resource: Mapping[str, Any]) -> bool:
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    return any(
        isinstance(t, Mapping)
        and t.get("system") == ORIGIN_SYSTEM
        and t.get("code") == STARTER_ORIGIN
        for t in (tags if isinstance(tags, list) else [])
    )


def _order_document(action: Mapping[str, Any]) -> dict[str, Any] | None:
    for ext in action.get("extension") or []:
        if not isinstance(ext, Mapping) or ext.get("url") != MEMBER_ORDER_EXTENSION:
            continue
        attachment = ext.get("valueAttachment")
        data = attachment.get("data") if isinstance(attachment, Mapping) else None
        if not isinstance(data, str):
            return None
        try:
            document = json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            return None
        return document if isinstance(document, dict) else None
    return None


def stored_members(resource: Mapping[str, Any]) -> list[StoredMember]:
    """The members of an order-set PlanDefinition, in action order."""
    members: list[StoredMember] = []
    for index, action in enumerate(resource.get("action") or []):
        if not isinstance(action, Mapping):
            continue
        key = action.get("id")
        coded = action.get("code")
        concept = coded[0] if isinstance(coded, list) and coded else None
        first = codings(concept, limit=1)
        code = (
            {
                k: v
                for k, v in (
                    ("system", first[0].system),
                    ("code", first[0].code),
                    ("display", first[0].display),
                )
                if v is not None
            }
            if first
            else None
        )
        title = action.get("title")
        members.append(
            StoredMember(
                key=key if isinstance(key, str) else f"action-{index + 1}",
                title=title if isinstance(title, str) else (concept_text(concept) or ""),
                selected=action.get("precheckBehavior") != "no",
                order=_order_document(action),
                code=code,
            )
        )
    return members


def to_order_set(resource: Mapping[str, Any]) -> OrderSet:
    """The business view of an order-set PlanDefinition."""
    sources = [
        Source(
            citation=str(a["citation"]),
            url=a["url"] if isinstance(a.get("url"), str) else None,
        )
        for a in resource.get("relatedArtifact") or []
        if isinstance(a, Mapping) and isinstance(a.get("citation"), str) and a["citation"].strip()
    ]
    members = [
        OrderSetMember(
            key=m.key,
            title=m.title,
            selected=m.selected,
            kind=str(m.order.get("kind", "unknown")) if m.order is not None else "unknown",
            code=m.code,
            order=m.order or {},
        )
        for m in stored_members(resource)
    ]
    text = {
        name: resource.get(name) if isinstance(resource.get(name), str) else None
        for name in ("url", "version", "title", "description", "status")
    }
    return OrderSet(
        id=str(resource.get("id", "")),
        version=version_id(resource),
        key=key_of(resource),
        url=text["url"],
        definition_version=text["version"],
        title=text["title"],
        description=text["description"],
        status=text["status"],
        starter=_is_starter(resource),
        members=members,
        sources=sources,
    )
