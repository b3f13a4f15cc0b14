"""Builders and readers for FHIR Bundles (transaction, batch, search results).

Read any Bundle through :func:`iter_entries` (one :class:`BundleEntry` per entry: resource,
search mode, fullUrl, response status), :func:`bundle_resources` (its resources, optionally of one
type) and :func:`next_link` / :func:`has_next` (paging). Readers are tolerant: malformed entries
and links are skipped, never raised on.

Build a transaction whose entries reference each other by ``urn:uuid:`` full URLs; HAPI assigns the
real ids and rewrites the references::

    patient_url = new_full_url()
    bundle = transaction_bundle([
        create_entry(patient, full_url=patient_url, if_none_exist={"identifier": "urn:x|1"}),
        create_entry({**encounter, "subject": {"reference": patient_url}}),
    ])
    result = await tenant_fhir.transaction(bundle)
    ids = [entry_location(e) for e in result["entry"]]
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ehr.fhir.addressing import (
    search_condition,
    validate_id,
    validate_resource_type,
    weak_etag,
)
from ehr.fhir.errors import FhirInvalidRequest

__all__ = [
    "BundleEntry",
    "ResourceLocation",
    "batch_bundle",
    "bundle_resources",
    "create_entry",
    "delete_entry",
    "entry_location",
    "has_next",
    "iter_entries",
    "new_full_url",
    "next_link",
    "parse_location",
    "transaction_bundle",
    "update_entry",
]


class ResourceLocation(NamedTuple):
    """Where HAPI stored a bundle entry: type, id and version."""

    resource_type: str
    resource_id: str
    version_id: str | None


def new_full_url() -> str:
    """A fresh ``urn:uuid:`` for an entry's ``fullUrl`` (a placeholder HAPI replaces)."""
    return f"urn:uuid:{uuid.uuid4()}"


def _type_of(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirInvalidRequest("A bundle entry's resource has no resourceType")
    return validate_resource_type(resource_type)


def create_entry(
    resource: Mapping[str, Any],
    *,
    full_url: str | None = None,
    if_none_exist: str | Mapping[str, str | Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A ``POST`` entry creating ``resource`` (conditionally, with ``if_none_exist``)."""
    request: dict[str, Any] = {"method": "POST", "url": _type_of(resource)}
    if if_none_exist is not None:
        request["ifNoneExist"] = search_condition(if_none_exist)
    return {"fullUrl": full_url or new_full_url(), "resource": dict(resource), "request": request}


def update_entry(resource: Mapping[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
    """A ``PUT`` entry replacing ``resource`` (which has its id); versioned with ``if_match``."""
    resource_type = _type_of(resource)
    resource_id = resource.get("id")
    if not isinstance(resource_id, str):
        raise FhirInvalidRequest("An update entry needs the resource's id")
    request: dict[str, Any] = {
        "method": "PUT",
        "url": f"{resource_type}/{validate_id(resource_id)}",
    }
    if if_match is not None:
        request["ifMatch"] = weak_etag(if_match)
    return {
        "fullUrl": f"{resource_type}/{resource_id}",
        "resource": dict(resource),
        "request": request,
    }


def delete_entry(resource_type: str, resource_id: str) -> dict[str, Any]:
    """A ``DELETE`` entry."""
    url = f"{validate_resource_type(resource_type)}/{validate_id(resource_id)}"
    return {"request": {"method": "DELETE", "url": url}}


def transaction_bundle(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``transaction`` Bundle of ``entries`` (all or nothing)."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [dict(e) for e in entries]}


def batch_bundle(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``batch`` Bundle of ``entries`` (each processed on its own)."""
    return {"resourceType": "Bundle", "type": "batch", "entry": [dict(e) for e in entries]}


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One entry of a Bundle, as read by :func:`iter_entries`.

    ``resource`` is ``None`` when the entry carries none (a transaction response without
    ``Prefer: return=representation``); ``mode`` is ``search.mode`` (``None`` when absent, which
    counts as a match); ``status`` the HTTP status code of ``response.status`` (``"201 Created"``
    → 201) of a transaction/batch response entry.
    """

    resource: dict[str, Any] | None
    mode: str | None
    full_url: str | None
    status: int | None

    @property
    def is_match(self) -> bool:
        """A search match (``search.mode`` is ``match`` or absent), not an ``_include``."""
        return self.mode is None or self.mode == "match"


def _entries(bundle: object) -> list[Any]:
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    return entries if isinstance(entries, list) else []


def _status(response: object) -> int | None:
    status = response.get("status") if isinstance(response, Mapping) else None
    if not isinstance(status, str):
        return None
    head = status.split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def iter_entries(bundle: object) -> Iterator[BundleEntry]:
    """Every entry of ``bundle`` that is an object (other entries are skipped)."""
    for entry in _entries(bundle):
        if not isinstance(entry, Mapping):
            continue
        resource = entry.get("resource")
        search = entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        full_url = entry.get("fullUrl")
        yield BundleEntry(
            resource if isinstance(resource, dict) else None,
            mode if isinstance(mode, str) else None,
            full_url if isinstance(full_url, str) else None,
            _status(entry.get("response")),
        )


def bundle_resources(value: object, resource_type: str | None = None) -> list[dict[str, Any]]:
    """The resources ``value`` holds, optionally only those of ``resource_type``.

    A Bundle gives its entries' resources (those with a ``resourceType``); any other resource
    gives itself (a copy); an ``OperationOutcome`` or a non-resource gives ``[]``.
    """
    if not isinstance(value, Mapping):
        return []
    kind = value.get("resourceType")
    if kind == "Bundle":
        return [
            entry.resource
            for entry in iter_entries(value)
            if entry.resource is not None
            and isinstance(entry.resource.get("resourceType"), str)
            and (resource_type is None or entry.resource["resourceType"] == resource_type)
        ]
    if isinstance(kind, str) and kind != "OperationOutcome":
        return [dict(value)] if resource_type is None or kind == resource_type else []
    return []


def next_link(bundle: object) -> str | None:
    """The URL of ``bundle``'s ``next`` link (the first link with that relation), or ``None``."""
    links = bundle.get("link") if isinstance(bundle, Mapping) else None
    for link in links if isinstance(links, list) else ():
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


def has_next(bundle: object) -> bool:
    """Whether ``bundle`` has a ``next`` page."""
    return next_link(bundle) is not None


def parse_location(location: str) -> ResourceLocation | None:
    """Type, id and version of a ``Location`` (``[base/]Type/id[/_history/vid]``), or ``None``."""
    path, _, version = location.partition("/_history/")
    parts = path.rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return ResourceLocation(parts[-2], parts[-1], version or None)


def entry_location(entry: Mapping[str, Any]) -> ResourceLocation | None:
    """Where a transaction/batch response entry was stored (from ``response.location``)."""
    response = entry.get("response")
    location = response.get("location") if isinstance(response, Mapping) else None
    if not isinstance(location, str):
        return None
    return parse_location(location)
