"""Entered-in-error: how a chart entry is "deleted" (never a hard delete of clinical data).

Kinds with a ``verificationStatus`` (Condition, AllergyIntolerance) take verification status
entered-in-error and lose their ``clinicalStatus`` (FHIR con-5, ait-2); kinds with a ``status``
(Observation, Encounter, DocumentReference) take status entered-in-error. The marking is
idempotent (an entry already marked is returned as it is) and versioned: the caller's
``If-Match``, else the version just read, so a concurrent update still wins with 412.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ehr.fhir import TenantFhirClient, status_code, version_id
from ehr.modules.clinical_record.versions import check_version

__all__ = ["ENTERED_IN_ERROR", "is_entered_in_error", "mark_verification_entered_in_error"]

ENTERED_IN_ERROR: Final = "entered-in-error"


def is_entered_in_error(resource: Mapping[str, Any]) -> bool:
    """Whether the entry is marked entered-in-error (its status or its verification status)."""
    if resource.get("status") == ENTERED_IN_ERROR:
        return True
    return status_code(resource.get("verificationStatus")) == ENTERED_IN_ERROR


async def mark_verification_entered_in_error(
    fhir: TenantFhirClient,
    current: dict[str, Any],
    *,
    if_match: str | None,
    verification_system: str,
    stale_detail: str,
) -> tuple[dict[str, Any], bool]:
    """``current`` (just read) marked entered-in-error by its verification status, stored as
    one versioned update; and whether it changed (False: it already was)."""
    if status_code(current.get("verificationStatus")) == ENTERED_IN_ERROR:
        return current, False
    if if_match is not None:
        check_version(current, if_match, detail=stale_detail)
    resource = dict(current)
    resource.pop("clinicalStatus", None)
    resource["verificationStatus"] = {
        "coding": [{"system": verification_system, "code": ENTERED_IN_ERROR}]
    }
    stored = await fhir.update(resource, if_match=if_match or version_id(current))
    return stored, True
