"""What a HAPI notification means: the events one changed resource yields.

A notification names a tenant, a resource type and id (the URL HAPI calls), and carries the
resource as stored (create/update) or nothing (delete). It yields:

- ``fhir.changed`` always: ``resource`` and ``resource_version``, ``subject`` (the Patient it
  concerns, when the resource names one), ``data.operation`` (``create`` for version 1,
  ``update``, ``delete``);
- ``result.critical`` for an Observation a laboratory calls critical (interpretation ``HH``,
  ``LL`` or ``AA`` of v3 ObservationInterpretation / HL7 v2 table 0078), preliminary, final,
  amended or corrected, about a Patient — unless it is the first version of an Observation the
  results module recorded itself (tag :data:`RESULTS_TAG`), whose report already emitted it.

Event ids are derived from (tenant, type, resource, version) — UUIDv5 — so a notification HAPI
repeats, or one replayed by anyone, names events the outbox already holds: it adds nothing.
Nothing from the resource body enters an event but ids and codes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ehr.fhir import bare_version
from ehr.platform.events import Event, new_event

__all__ = [
    "CRITICAL_INTERPRETATIONS",
    "RESULTS_TAG",
    "Change",
    "NotificationError",
    "change_events",
    "event_id",
    "read_change",
]

Operation = Literal["create", "update", "delete"]

# Platform tag on the Observations the results module records (their report emits the
# critical event; the gateway refuses platform tags from clients).
RESULTS_TAG: Final[Mapping[str, str]] = {"system": "urn:ehr:platform", "code": "results-api"}
_INTERPRETATION_SYSTEMS: Final = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "http://terminology.hl7.org/CodeSystem/v2-0078",
    }
)
CRITICAL_INTERPRETATIONS: Final = frozenset({"HH", "LL", "AA"})
_REPORTABLE: Final = frozenset({"preliminary", "final", "amended", "corrected"})
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
_PATIENT_REF: Final = re.compile(r"(?:.*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?")
_CODE: Final = re.compile(r"[A-Za-z0-9._:\-/|#]{1,128}")
_NAMESPACE: Final = uuid.UUID("5f0c8e86-8d0f-5a7e-9b1d-3c7e2f6a9c41")
# Where a resource names its patient (first found wins).
_SUBJECT_ELEMENTS: Final = ("subject", "patient", "beneficiary", "for")


class NotificationError(ValueError):
    """The notification is malformed (wrong type or id, body of another resource)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change of one resource, as a notification reports it."""

    tenant: str
    resource_type: str
    resource_id: str
    operation: Operation
    version: str | None
    resource: Mapping[str, Any] | None  # None for a delete

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


def read_change(
    tenant: str,
    resource_type: str,
    resource_id: str,
    *,
    method: str,
    body: Mapping[str, Any] | None,
    if_match: str | None,
) -> Change:
    """The change a notification reports; :class:`NotificationError` if it is malformed."""
    if not _TYPE.fullmatch(resource_type) or not _ID.fullmatch(resource_id):
        raise NotificationError("the resource type or id is not a FHIR one")
    if method == "DELETE":
        return Change(tenant, resource_type, resource_id, "delete", None, None)
    if body is None:
        raise NotificationError("a create or update notification carries the resource")
    if body.get("resourceType") != resource_type or body.get("id") != resource_id:
        raise NotificationError("the body is not the resource the URL names")
    meta = body.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or not _ID.fullmatch(version):
        version = bare_version(if_match) if if_match else None
    if version is None or not _ID.fullmatch(version):
        raise NotificationError("the notification names no version of the resource")
    operation: Operation = "create" if version == "1" else "update"
    return Change(tenant, resource_type, resource_id, operation, version, body)


def event_id(tenant: str, event_type: str, reference: str, version: str | None) -> uuid.UUID:
    """The id of the event ``event_type`` about ``reference`` at ``version`` (``None``: its
    deletion): the same notification always names the same event."""
    return uuid.uuid5(_NAMESPACE, f"{tenant}|{event_type}|{reference}|{version or 'deleted'}")


def _subject(change: Change) -> str | None:
    if change.resource_type == "Patient":
        return change.reference
    resource = change.resource or {}
    for element in _SUBJECT_ELEMENTS:
        value = resource.get(element)
        reference = value.get("reference") if isinstance(value, Mapping) else None
        if isinstance(reference, str):
            found = _PATIENT_REF.fullmatch(reference)
            if found:
                return f"Patient/{found.group(1)}"
    return None


def _codings(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        return []
    return [c for c in value.get("coding") or [] if isinstance(c, Mapping)]


def _critical_interpretation(resource: Mapping[str, Any]) -> str | None:
    for concept in resource.get("interpretation") or []:
        for coding in _codings(concept):
            code = coding.get("code")
            if coding.get("system") in _INTERPRETATION_SYSTEMS and code in CRITICAL_INTERPRETATIONS:
                return str(code)
    return None


def _recorded_by_results(change: Change) -> bool:
    meta = (change.resource or {}).get("meta")
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    return change.version == "1" and any(
        isinstance(t, Mapping)
        and t.get("system") == RESULTS_TAG["system"]
        and t.get("code") == RESULTS_TAG["code"]
        for t in tags or []
    )


def _test_code(resource: Mapping[str, Any]) -> str | None:
    for coding in _codings(resource.get("code")):
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            joined = f"{system}|{code}"
            if _CODE.fullmatch(joined):
                return joined
    return None


def _event(change: Change, event_type: str, subject: str | None, data: dict[str, Any]) -> Event:
    draft = new_event(
        event_type,
        tenant=change.tenant,
        subject=subject,
        resource=change.reference,
        resource_version=change.version,
        data=data,
    )
    return draft.model_copy(
        update={"id": event_id(change.tenant, event_type, change.reference, change.version)}
    )


def change_events(change: Change) -> list[Event]:
    """The events of one change: ``fhir.changed`` first, then any it implies."""
    subject = _subject(change)
    found = [_event(change, "fhir.changed", subject, {"operation": change.operation})]
    resource = change.resource
    if (
        change.resource_type == "Observation"
        and resource is not None
        and subject is not None
        and resource.get("status") in _REPORTABLE
        and not _recorded_by_results(change)
    ):
        interpretation = _critical_interpretation(resource)
        if interpretation is not None:
            data: dict[str, Any] = {"critical": True, "interpretation": interpretation}
            code = _test_code(resource)
            if code is not None:
                data["code"] = code
            found.append(_event(change, "result.critical", subject, data))
    return found
