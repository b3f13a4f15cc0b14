"""``/api/medication-safety``: drug-drug, drug-allergy and duplicate-therapy checks (thin:
authorize, call, audit, return).

Permissions: ``medication:read`` for the checks and the knowledge base;
``medication_safety:configure`` (administrators) to read and change the tenant's display policy
(clinicians see its effect: every issue carries the display the policy gave it).

Audit: a check of explicit lists is noted as ``medication_safety:check`` (no patient id: the
caller may still have sent a patient's medications); a patient check as
``medication_safety:patient-check`` on the Patient, flagged break-glass when restricted data was
opened. The knowledge-base routes touch no patient data and are not audited. A policy change is
a security event (``medication_safety:policy-update``) carrying the old and new policy.
Restricted patients need break-glass exactly as in ``/api/patients``.
"""

from __future__ import annotations

from typing import Annotated, Final

import anyio.to_thread
from fastapi import APIRouter, Query, Request

from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.medication_safety.catalogue import knowledge_base_summary, list_rules
from ehr.modules.medication_safety.dependencies import (
    KnowledgeDep,
    MedicationSafetyServiceDep,
    TenantPolicyDep,
)
from ehr.modules.medication_safety.issues import IssueCategory
from ehr.modules.medication_safety.knowledge import Severity
from ehr.modules.medication_safety.policy import policy_audit_details, save_policy
from ehr.modules.medication_safety.schemas import (
    CheckRequest,
    CheckResponse,
    Include,
    KnowledgeBaseOut,
    PatientCheckRequest,
    PatientCheckResponse,
    PolicyIn,
    PolicyOut,
    RuleList,
    SourceList,
)
from ehr.modules.patients import PatientId
from ehr.platform.audit.dependencies import PhiAudit, record_security_event
from ehr.platform.auth.authorization import (
    BreakGlassDep,
    RequirePermission,
    check_restricted_access,
)
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["MEDICATION_SAFETY_PATH", "router"]

MEDICATION_SAFETY_PATH: Final = "/api/medication-safety"

router = APIRouter(
    prefix=MEDICATION_SAFETY_PATH, tags=["medication-safety"], route_class=IntakeRoute
)

CanRead = Annotated[Principal, RequirePermission(Permission.MEDICATION_READ)]
READ = RequirePermission(Permission.MEDICATION_READ)
CanConfigure = Annotated[Principal, RequirePermission(Permission.MEDICATION_SAFETY_CONFIGURE)]

IncludeQuery = Annotated[
    list[Include] | None,
    Query(
        max_length=2,
        description="Add renderings of each issue: `detected-issue` (FHIR R4 DetectedIssue), "
        "`cds-card` (CDS Hooks 2.0 card). Repeat to add both.",
    ),
]


@router.post(
    "/check",
    dependencies=[READ],
    response_model=CheckResponse,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def check_lists(
    payload: CheckRequest,
    service: MedicationSafetyServiceDep,
    audit: PhiAudit,
    include: IncludeQuery = None,
) -> CheckResponse:
    """Check proposed medications against the active ones, each other and the allergies given.

    Codes: any RxNorm RxCUI (ingredient, clinical or branded drug, pack) or NDC; allergies may
    also be SNOMED CT substances. Unknown codes are listed in `unresolved` (still 200); items
    with nothing checkable in `not_checkable`. `interruptive` is true when any issue must
    interrupt the prescriber under the tenant's policy.
    """
    # The engine is CPU work growing with the lists: off the event loop.
    result = await anyio.to_thread.run_sync(service.check, payload, include or ())
    audit.access(
        "medication_safety:check",
        details={
            "proposed": len(payload.proposed),
            "active": len(payload.active),
            "allergies": len(payload.allergies),
            "issues": len(result.issues),
        },
    )
    return result


@router.post(
    "/patients/{patient_id}/check",
    response_model=PatientCheckResponse,
    responses=problem_responses(401, 403, 404, 410, 413, 422, 502, 503, 504),
)
async def check_patient(
    patient_id: PatientId,
    payload: PatientCheckRequest,
    principal: CanRead,
    service: MedicationSafetyServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    include: IncludeQuery = None,
) -> PatientCheckResponse:
    """Check proposed medications against the patient's active medications and allergies.

    The record is read from the tenant's FHIR server: MedicationRequest (status active or
    on-hold; not proposals/options, not do-not-perform), MedicationStatement (active, intended
    or on-hold, period not ended), AllergyIntolerance (active or no clinical status; not refuted
    or entered in error; medication allergies). `replaces` leaves out orders the proposal
    replaces. `profile` says what was used and what was skipped, and why. A restricted patient
    needs `X-Break-Glass-Reason` (and `break_glass:assert`); restricted orders or allergies of a
    patient are used only with it and otherwise listed as skipped (`restricted`).
    """
    patient = await service.read_patient(patient_id)
    used_for_patient = check_restricted_access(patient, principal, break_glass)
    may_see_restricted = break_glass.asserted and principal.has(Permission.BREAK_GLASS)
    outcome = await service.check_patient(
        patient, payload, include or (), may_see_restricted=may_see_restricted
    )
    used = used_for_patient or outcome.used_break_glass
    audit.access(
        "medication_safety:patient-check",
        resource_type="Patient",
        resource_id=patient_id,
        patient_id=patient_id,
        details={
            "proposed": len(payload.proposed),
            "medications": outcome.response.profile.medications_considered,
            "allergies": outcome.response.profile.allergies_considered,
            "issues": len(outcome.response.issues),
        },
        break_glass=used,
        break_glass_reason=break_glass.reason if used else None,
    )
    return outcome.response


@router.get(
    "/knowledge-base",
    dependencies=[READ],
    response_model=KnowledgeBaseOut,
    responses=problem_responses(401, 403),
)
async def knowledge_base(knowledge: KnowledgeDep) -> KnowledgeBaseOut:
    """The knowledge base the checks use: version, source files with SHA-256, counts, and the
    RxNorm table (release and NLM attribution)."""
    return knowledge_base_summary(knowledge)


@router.get(
    "/knowledge-base/rules",
    dependencies=[READ],
    response_model=RuleList,
    responses=problem_responses(401, 403, 422),
)
async def knowledge_base_rules(
    knowledge: KnowledgeDep,
    category: Annotated[IssueCategory | None, Query(description="Only this category.")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    source_list: Annotated[
        SourceList | None, Query(description="Only drug-drug rules from this published list.")
    ] = None,
) -> RuleList:
    """The rules (drug-drug, cross-sensitivity, duplicate-therapy and the engine's own), with
    severity, default display, the labels of their sides and citations."""
    return list_rules(knowledge.kb, category=category, severity=severity, source_list=source_list)


@router.get(
    "/policy",
    dependencies=[RequirePermission(Permission.MEDICATION_SAFETY_CONFIGURE)],
    response_model=PolicyOut,
    responses=problem_responses(401, 403, 503),
)
async def get_policy(policy: TenantPolicyDep) -> PolicyOut:
    """The tenant's display policy: which severities interrupt, and per-rule displays."""
    return policy.to_out()


@router.put(
    "/policy",
    response_model=PolicyOut,
    responses=problem_responses(401, 403, 413, 422, 503),
)
async def put_policy(
    payload: PolicyIn,
    principal: CanConfigure,
    previous: TenantPolicyDep,
    knowledge: KnowledgeDep,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> PolicyOut:
    """Replace the tenant's display policy (display only: KB severities never change).

    Every rule id in `rule_display` must exist in the knowledge base (else 422). The change is
    recorded on the audit trail as a security event with the previous policy.
    """
    saved = await save_policy(
        session,
        principal.tenant_id,
        payload,
        kb=knowledge.kb,
        updated_by=f"{principal.kind}:{principal.subject}",
    )
    await record_security_event(
        resources.sessionmaker,
        action="medication_safety:policy-update",
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=200,
        details=policy_audit_details(previous, saved),
    )
    return saved.to_out()
