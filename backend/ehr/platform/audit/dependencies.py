"""``PhiAudit``: the per-request audit trail every route touching patient data takes.

A handler notes what it accessed::

    async def read_patient(..., audit: PhiAudit) -> ...:
        audit.access("patient:read", resource_type="Patient", resource_id=pid, patient_id=pid)

After the handler returns (before the response is sent) one audit record per noted access is
written, in its own transaction; if writing fails, the request fails with 503
``audit_unavailable`` — no unrecorded PHI access. If the handler raises after noting accesses,
the records carry outcome ``denied``/``failure`` and the status. Emergency access:
``audit.assert_break_glass(reason)`` (purpose of use becomes ``ETREAT``). The caller may state a
purpose of use in ``X-Purpose-Of-Use`` (HL7 PurposeOfUse code; default ``TREAT``; unknown → 422).
Implementation: :mod:`ehr.platform.audit.recorder`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.platform.audit.recorder import (
    get_phi_audit,
    record_principal_event,
    record_security_event,
)
from ehr.platform.audit.trail import AccessNote, AuditTrail

__all__ = [
    "AccessNote",
    "AuditTrail",
    "PhiAudit",
    "get_phi_audit",
    "record_principal_event",
    "record_security_event",
]

# scope="function": the records are written before the response is sent, so a failed write
# is answered with 503 instead of after a success status.
PhiAudit = Annotated[AuditTrail, Depends(get_phi_audit, scope="function")]
