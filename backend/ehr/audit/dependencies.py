"""``PhiAudit``: the per-request audit trail every route touching patient data takes.

A handler notes what it accessed::

    async def read_patient(..., audit: PhiAudit) -> ...:
        audit.access("patient:read", resource_type="Patient", resource_id=pid, patient_id=pid)

After the handler returns (before the response is sent) one audit record per noted access is
written; if writing fails, the request fails with 503 — no unrecorded PHI access.
(Contract placeholder: the recorder is implemented in ehr.audit.recorder.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

__all__ = ["AccessNote", "AuditTrail", "PhiAudit", "get_phi_audit"]


@dataclass(slots=True)
class AccessNote:
    action: str
    resource_type: str | None = None
    resource_id: str | None = None
    patient_id: str | None = None
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class AuditTrail:
    """What the current request accessed (ids and codes only, never PHI)."""

    notes: list[AccessNote] = field(default_factory=list)

    def access(
        self,
        action: str,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        patient_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.notes.append(AccessNote(action, resource_type, resource_id, patient_id, details))


async def get_phi_audit() -> AsyncIterator[AuditTrail]:
    yield AuditTrail()


PhiAudit = Annotated[AuditTrail, Depends(get_phi_audit, scope="function")]
