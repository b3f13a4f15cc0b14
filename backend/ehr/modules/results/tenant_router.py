"""Tenant-wide results routes: the critical-results worklist and the result policy.

``GET /api/critical-results`` (``result:acknowledge``: the physicians and nurses who act on
them; a portal user is 403): the
acknowledgement items across the tenant, open ones by default, per unit (``location``), each
marked ``escalated`` when open longer than the tenant's delay. One PHI audit note per patient
listed (``result:critical-list``).

``GET/PUT /api/result-policy`` (``tenant:admin``): the critical-value table in force (shipped,
cited rows and the tenant's overrides), the escalation delay and the portal release delay. A
change is a security event (``result_policy:update``, old and new values — codes and numbers
only), written before the request's transaction commits: no unrecorded change.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request

from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules import clinical_record, patients
from ehr.modules.results.dependencies import ResultPolicyDep
from ehr.modules.results.errors import WorklistNotForPatients
from ehr.modules.results.policy import policy_audit_details, save_result_policy
from ehr.modules.results.schemas import (
    FHIR_ID_PATTERN,
    CriticalResultList,
    ResultPolicyIn,
    ResultPolicyOut,
)
from ehr.modules.results.units import units_ready
from ehr.modules.results.worklist import critical_worklist
from ehr.platform.audit.dependencies import PhiAudit, record_security_event
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["critical_results_router", "result_policy_router"]

CRITICAL_RESULTS_PATH: Final = "/api/critical-results"
RESULT_POLICY_PATH: Final = "/api/result-policy"

critical_results_router = APIRouter(
    prefix=CRITICAL_RESULTS_PATH, tags=["results"], route_class=IntakeRoute
)
result_policy_router = APIRouter(prefix=RESULT_POLICY_PATH, tags=["admin"], route_class=IntakeRoute)

CanAcknowledge = Annotated[Principal, RequirePermission(Permission.RESULT_ACKNOWLEDGE)]
TenantAdmin = Annotated[Principal, RequirePermission(Permission.TENANT_ADMIN)]


@critical_results_router.get(
    "", response_model=CriticalResultList, responses=problem_responses(401, 403, 422, 502, 503, 504)
)
async def list_critical_results(
    principal: CanAcknowledge,
    fhir: TenantFhirDep,
    policy: ResultPolicyDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    unacknowledged: Annotated[bool, Query(description="Only those still open.")] = True,
    location: Annotated[
        str | None,
        Query(pattern=FHIR_ID_PATTERN, max_length=64, description="Only this unit (Location id)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CriticalResultList:
    """Critical results of the tenant (newest first), optionally of one unit."""
    if patients.compartment_of(principal) is not None:
        raise WorklistNotForPatients("The critical-results worklist is for clinical staff.")
    listed = await critical_worklist(
        fhir,
        policy=policy,
        visible=clinical_record.entry_visibility(principal, break_glass),
        unacknowledged=unacknowledged,
        location_id=location,
        limit=limit,
    )
    by_patient: dict[str, list[str]] = {}
    for item in listed.items:
        by_patient.setdefault(item.patient_id, []).append(item.report_id)
    for patient_id, report_ids in by_patient.items():
        audit.access(
            "result:critical-list",
            resource_type="DiagnosticReport",
            patient_id=patient_id,
            details={"resource_ids": report_ids},
        )
    return listed


@result_policy_router.get(
    "", response_model=ResultPolicyOut, responses=problem_responses(401, 403, 503)
)
async def get_result_policy(principal: TenantAdmin, policy: ResultPolicyDep) -> ResultPolicyOut:
    """The tenant's result policy and the critical-value table in force (with citations)."""
    del principal
    return policy.to_out()


@result_policy_router.put(
    "", response_model=ResultPolicyOut, responses=problem_responses(401, 403, 413, 422, 503)
)
async def put_result_policy(
    payload: ResultPolicyIn,
    principal: TenantAdmin,
    previous: ResultPolicyDep,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> ResultPolicyOut:
    """Replace the tenant's result policy. An override replaces the shipped row of its LOINC
    code (or adds one): LOINC check digit and UCUM unit checked (422 `invalid_code`,
    `unit_not_allowed`; a unit of another kind than the shipped row's is refused)."""
    await units_ready()
    saved = await save_result_policy(
        session, principal.tenant_id, payload, updated_by=f"{principal.kind}:{principal.subject}"
    )
    await record_security_event(
        resources.sessionmaker,
        action="result_policy:update",
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=200,
        resource_type="ResultPolicy",
        details=policy_audit_details(previous, saved),
    )
    return saved.to_out()
