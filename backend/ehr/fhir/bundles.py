"""Builders and readers for FHIR Bundles (transaction, batch, search results).

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ehr.fhir.addressing import (
    search_condition,
    validate_id,
    validate_resource_type,
    weak_etag,
)
from ehr.fhir.errors import FhirInvalidRequest

__all__ = [
    "ResourceLocation",
    "batch_bundle",
    "bundle_resources",
    "create_entry",
    "delete_entry",
    "entry_location",
    "new_full_url",
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


def bundle_resources(
    bundle: Mapping[str, Any], resource_type: str | None = None
) -> list[dict[str, Any]]:
    """The resources in ``bundle``'s entries, optionally only those of ``resource_type``."""
    entries: Sequence[Any] = bundle.get("entry") or []
    resources: list[dict[str, Any]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, dict) and (
            resource_type is None or resource.get("resourceType") == resource_type
        ):
            resources.append(resource)
    return resources


def entry_location(entry: Mapping[str, Any]) -> ResourceLocation | None:
    """Where a transaction/batch response entry was stored (from ``response.location``)."""
    response = entry.get("response")
    location = response.get("location") if isinstance(response, Mapping) else None
    if not isinstance(location, str):
        return None
    path, _, version = location.partition("/_history/")
    parts = path.rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return ResourceLocation(parts[-2], parts[-1], version or None)
