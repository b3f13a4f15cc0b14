"""The patient gate every chart route passes before it reads or writes a record.

The patient is read through the patients module (tenant-bound; a portal principal asking for
another patient gets 404 as if missing) and the break-glass rule is applied to it: a restricted
(R/V) patient needs ``break_glass:assert`` and a reason. The gate then says which of the chart's
entries the caller sees (restricted entries only with break-glass), remembers whether
break-glass opened anything shown, and writes the PHI audit note with that flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ehr.modules import patients
from ehr.platform.audit.dependencies import AuditTrail
from ehr.platform.auth.authorization import (
    BreakGlassRequest,
    check_restricted_access,
    is_restricted,
)
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["PatientGate", "entry_visibility", "open_patient"]

Visibility = Callable[[Mapping[str, Any]], bool]


def entry_visibility(principal: Principal, break_glass: BreakGlassRequest) -> Visibility:
    """Which entries of an open chart the caller sees: restricted ones only with break-glass
    (the same rule as for the patient: asserted, and the caller may break the glass)."""
    may_break_glass = break_glass.asserted and principal.has(Permission.BREAK_GLASS)

    def visible(resource: Mapping[str, Any]) -> bool:
        return may_break_glass or not is_restricted(resource)

    return visible


@dataclass(frozen=True, slots=True)
class PatientGate:
    """The patient whose chart is open, and whether break-glass opened what is shown."""

    patient_id: str
    patient: dict[str, Any]
    principal: Principal
    request: BreakGlassRequest
    opened_by_break_glass: bool = False

    @property
    def break_glass(self) -> BreakGlassRequest | None:
        """The break-glass request, when it was used (for the audit note)."""
        return self.request if self.opened_by_break_glass else None

    def admit(self, resource: Mapping[str, Any]) -> PatientGate:
        """Apply the break-glass rule to one entry (403 / break-glass required when it is
        restricted and the caller may not see it); the gate that remembers its use."""
        used = check_restricted_access(resource, self.principal, self.request)
        return dataclasses.replace(self, opened_by_break_glass=self.opened_by_break_glass or used)

    def shown(
        self, resources: Iterable[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], PatientGate]:
        """The entries the caller sees (restricted ones left out without break-glass), and the
        gate that remembers whether break-glass showed any."""
        visible = entry_visibility(self.principal, self.request)
        shown = [r for r in resources if visible(r)]
        used = self.opened_by_break_glass or any(is_restricted(r) for r in shown)
        return shown, dataclasses.replace(self, opened_by_break_glass=used)

    def note(
        self,
        audit: AuditTrail,
        action: str,
        *,
        resource_type: str,
        resource_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """One PHI audit note of this access, naming the patient (and the break-glass use)."""
        bg = self.break_glass
        audit.access(
            action,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=self.patient_id,
            details=details,
            break_glass=bg is not None,
            break_glass_reason=bg.reason if bg is not None else None,
        )


async def open_patient(
    patient_id: str,
    principal: Principal,
    service: patients.PatientService,
    break_glass: BreakGlassRequest,
) -> PatientGate:
    """The patient, if this principal may open its chart (404 outside the tenant or the
    compartment; 403 / 428-style break-glass refusals for a restricted record)."""
    patient = await service.get(patient_id)
    used = check_restricted_access(patient, principal, break_glass)
    return PatientGate(patient_id, patient, principal, break_glass, used)
