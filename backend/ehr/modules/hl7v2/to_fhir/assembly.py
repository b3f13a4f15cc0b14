"""One message's transaction under construction: entries keyed on business identifiers.

Every clinical resource is a conditional update, ``PUT <Type>?identifier=<system>|<value>``,
with ``fullUrl`` ``urn:uuid:<uuid5 of type, system and value>``: the same business key gives
the same placeholder in every message, and HAPI resolves placeholders to the conditional
target, so a resent or corrected message updates the resources it wrote before. Only the
message's own MessageHeader and Provenance are keyed otherwise: on the tag
``urn:ehr:hl7v2:message|v2-<message_id>`` (see :meth:`Assembly.put_with_id`).

Reference data a message only names — Practitioner, Location — and the resources a message of
another type carries (the Patient and Encounter of an ORU, the ServiceRequest of a result) are
conditional *creates* (``POST`` + ``ifNoneExist`` on the same key) instead: created when unknown,
left as they are when known. See :mod:`.messages` for who owns what.

A PUT replaces the whole resource: what a message does not carry is removed from the resource
(an explicit HL7 null ``""`` therefore also clears). That is intended — the sending system
(registration for ADT, the lab for ORU) is the source of truth for what it sends.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

from ehr.modules.hl7v2.parsing import Message, Segment
from ehr.modules.hl7v2.to_fhir.conversion import ConversionContext, ConversionError
from ehr.modules.hl7v2.to_fhir.datetimes import UTC, parse_dtm, zone_of
from ehr.modules.hl7v2.to_fhir.fields import value
from ehr.modules.hl7v2.to_fhir.identifiers import identifier_system, local_system, search_token

__all__ = ["Assembly", "Resource", "without_empty"]

# The tag of the MessageHeader and Provenance a message wrote (code: ``v2-<message id>``).
MESSAGE_TAG_SYSTEM: Final = "urn:ehr:hl7v2:message"

Resource = dict[str, Any]

# Fixed namespace of the placeholders (fullUrl) of this conversion; never change it.
_PLACEHOLDERS: Final = uuid.UUID("6f1f3c2e-9b7a-5d7e-8c31-2a4d0b9e7f10")
_MESSAGE_ID: Final = re.compile(r"^[A-Za-z0-9]{1,61}$")


def without_empty(element: Any) -> Any:
    """``element`` without the empty strings, empty lists, empty objects and None anywhere
    inside it (FHIR forbids them); whitespace-only strings count as empty. Returns None when
    nothing is left."""
    if isinstance(element, Mapping):
        pruned = {key: without_empty(item) for key, item in element.items()}
        kept = {key: item for key, item in pruned.items() if item is not None}
        return kept or None
    if isinstance(element, list):
        items = [without_empty(item) for item in element]
        kept_items = [item for item in items if item is not None]
        return kept_items or None
    if isinstance(element, str):
        return element if element.strip() else None
    return element


@dataclass(slots=True)
class _Entry:
    full_url: str
    resource: Resource
    request: dict[str, str]


@dataclass
class Assembly:
    """The state of one conversion: the message, the sender's defaults, the entries so far."""

    message: Message
    context: ConversionContext
    default_zone: str = UTC
    focus: list[str] = field(default_factory=list)
    _entries: list[_Entry] = field(default_factory=list)
    _by_key: dict[str, _Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _MESSAGE_ID.match(self.context.message_id):
            raise ConversionError("the inbox message id is not a valid id", None)
        self.default_zone = zone_of(self.message.header.timestamp) or UTC

    # ----------------------------------------------------------------- sender defaults

    @property
    def msh(self) -> Segment:
        msh = self.message.first("MSH")
        if msh is None:  # parse_message guarantees an MSH; kept for the type checker
            raise ConversionError("the message has no MSH segment", "MSH")
        return msh

    @property
    def sender_namespace(self) -> str:
        """MSH-4.1, else MSH-3.1 (the namespace of local code systems)."""
        return value(self.msh, 4) or value(self.msh, 3) or "unknown-sender"

    def default_system(self, location: str) -> str:
        """The identifier system of identifiers without an assigning authority: MSH-4, else
        MSH-3, through :func:`identifier_system`."""
        msh = self.msh
        for field_no in (4, 3):
            system = identifier_system(
                value(msh, field_no, 1), value(msh, field_no, 2), value(msh, field_no, 3)
            )
            if system:
                return system
        raise ConversionError("no assigning authority and no MSH-3/MSH-4 to default to", location)

    def local_code_system(self, name: str) -> str:
        """A sender-local code system (``L``, ``99zzz``…): scoped by the sender's namespace."""
        return f"{local_system(self.sender_namespace)}:codesystem:{quote(name.strip(), safe='')}"

    # ----------------------------------------------------------------- dates and times

    def date_time(self, raw: str, location: str, *, strict: bool = True) -> str | None:
        """FHIR dateTime of a v2 DTM (see :mod:`datetimes`); None when empty. A malformed
        value raises when ``strict``, and is dropped otherwise."""
        if not raw:
            return None
        try:
            return parse_dtm(raw, location).date_time(self.default_zone)
        except ConversionError:
            if strict:
                raise
            return None

    def date(self, raw: str, location: str, *, strict: bool = True) -> str | None:
        """FHIR date of a v2 DT/DTM (time dropped); None when empty."""
        if not raw:
            return None
        try:
            return parse_dtm(raw, location).date()
        except ConversionError:
            if strict:
                raise
            return None

    def instant(self, raw: str, location: str, *, strict: bool = False) -> str | None:
        """FHIR instant of a v2 DTM precise to the minute at least; None otherwise."""
        if not raw:
            return None
        try:
            return parse_dtm(raw, location).instant(self.default_zone)
        except ConversionError:
            if strict:
                raise
            return None

    # ----------------------------------------------------------------- entries

    def placeholder(self, *parts: str) -> str:
        """The deterministic ``urn:uuid:`` of a business key."""
        return f"urn:uuid:{uuid.uuid5(_PLACEHOLDERS, '|'.join(parts))}"

    def put(
        self,
        resource_type: str,
        key: Mapping[str, Any],
        resource: Resource,
        *,
        location: str,
        on_duplicate: Literal["error", "reuse"] = "error",
        method: Literal["PUT", "POST"] = "PUT",
        also_match: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Add a conditional write keyed on ``key`` (an Identifier with system and value);
        returns the entry's ``fullUrl`` for references.

        ``PUT`` is a conditional update; ``POST`` a conditional create (``ifNoneExist``), for
        resources this message is not the source of truth for. A second entry with the same
        key is reused for reference data (``on_duplicate="reuse"``) and refused otherwise:
        two segments must not write one resource.

        ``also_match`` (``POST`` only): more identifiers (system and value) the resource
        carries; the conditional create then finds an existing resource by any of them
        (``identifier=a|1,b|2`` — a comma is an OR in FHIR search), not only by ``key``.
        """
        system, key_value = str(key.get("system") or ""), str(key.get("value") or "")
        if not system or not key_value:
            raise ConversionError(f"no identifier to key the {resource_type} on", location)
        token = search_token(system, key_value)
        dedupe = f"{resource_type}?identifier={token}"
        existing = self._by_key.get(dedupe)
        if existing is not None:
            if on_duplicate == "reuse":
                return existing.full_url
            raise ConversionError(f"two segments write the same {resource_type}", location)
        identifiers = resource.setdefault("identifier", [])
        if not any(
            isinstance(item, Mapping)
            and item.get("system") == system
            and item.get("value") == key_value
            for item in identifiers
        ):
            identifiers.insert(0, {"system": system, "value": key_value})
        resource["resourceType"] = resource_type
        full_url = self.placeholder(resource_type, system, key_value)
        if method == "PUT":
            request = {"method": "PUT", "url": dedupe}
        else:
            tokens = [token]
            for other in also_match:
                other_system, other_value = (
                    str(other.get("system") or ""),
                    str(other.get("value") or ""),
                )
                other_token = search_token(other_system, other_value)
                if other_system and other_value and other_token not in tokens:
                    tokens.append(other_token)
            request = {
                "method": "POST",
                "url": resource_type,
                "ifNoneExist": f"identifier={','.join(tokens)}",
            }
        entry = _Entry(full_url=full_url, resource=resource, request=request)
        self._entries.append(entry)
        self._by_key[dedupe] = entry
        return full_url

    def put_with_id(self, resource_type: str, resource_id: str, resource: Resource) -> str:
        """Add the one resource of its type this message owns (MessageHeader, Provenance):
        tagged ``urn:ehr:hl7v2:message|<resource_id>`` and written by a conditional update on
        that tag, so a replay of the message updates it. (Not ``PUT Type/<id>``: our HAPI
        assigns every id itself — ``client_id_strategy: NOT_ALLOWED``.)"""
        resource["resourceType"] = resource_type
        resource.pop("id", None)
        meta = resource.setdefault("meta", {})
        meta.setdefault("tag", []).append({"system": MESSAGE_TAG_SYSTEM, "code": resource_id})
        full_url = self.placeholder(resource_type, resource_id)
        self._entries.append(
            _Entry(
                full_url=full_url,
                resource=resource,
                request={
                    "method": "PUT",
                    "url": f"{resource_type}?_tag={MESSAGE_TAG_SYSTEM}|{resource_id}",
                },
            )
        )
        return full_url

    def has_key(self, resource_type: str, system: str, key_value: str) -> bool:
        """Whether an entry keyed on ``system|key_value`` was already added."""
        return f"{resource_type}?identifier={search_token(system, key_value)}" in self._by_key

    def full_urls(self) -> list[str]:
        return [entry.full_url for entry in self._entries]

    def resource_of(self, full_url: str) -> Resource | None:
        """The resource added under ``full_url`` (to complete it after the fact)."""
        return next((e.resource for e in self._entries if e.full_url == full_url), None)

    def bundle(self) -> tuple[Resource, dict[str, int]]:
        """The transaction Bundle (empties pruned) and the count of entries per type."""
        entries: list[Resource] = []
        counts: Counter[str] = Counter()
        for entry in self._entries:
            resource = without_empty(entry.resource) or {}
            entries.append(
                {"fullUrl": entry.full_url, "resource": resource, "request": entry.request}
            )
            counts[str(resource.get("resourceType"))] += 1
        return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, dict(counts)
