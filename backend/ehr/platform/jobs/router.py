"""``/api/jobs``: a tenant's background jobs — list, read, cancel, retry (``tenant:admin``).

Every job belongs to one tenant; another tenant's job id is 404 ``job_not_found``. Cancel and
retry are security events on the audit trail (``job:cancel`` / ``job:retry``, the job id and
kind), written before the request's transaction commits: if the audit cannot be written the
action is rolled back (503), never an unrecorded change. A finer permission (e.g. a
``job:manage`` for operators of a module's jobs) is a later change to the permission table.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.platform.audit.dependencies import record_security_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.jobs.queue import JobStatus
from ehr.platform.jobs.schemas import JobList, JobOut, JobProgress
from ehr.platform.jobs.service import JobView, cancel_job, get_job, list_jobs, retry_job

__all__ = ["job_out", "router"]

router = APIRouter(prefix="/api/jobs", tags=["jobs"], route_class=IntakeRoute)

TenantAdmin = Annotated[Principal, RequirePermission(Permission.TENANT_ADMIN)]


def job_out(view: JobView) -> JobOut:
    job = view.job
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=view.status,
        owner=job.owner,
        progress=JobProgress(done=job.progress_done, total=job.progress_total),
        attempts=view.attempts,
        runs=job.run_count,
        cancel_requested=job.cancel_requested,
        created_at=job.created_at,
        scheduled_at=job.scheduled_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
        result=job.result,
        error=job.error,
    )


async def _audit(
    resources: ResourcesDep, principal: Principal, request: Request, *, action: str, view: JobView
) -> None:
    await record_security_event(
        resources.sessionmaker,
        action=action,
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=200,
        resource_type="Job",
        resource_id=str(view.job.id),
        details={"kind": view.job.kind, "status": str(view.status)},
    )


@router.get("", response_model=JobList, responses=problem_responses(401, 403, 422, 503))
async def list_tenant_jobs(
    principal: TenantAdmin,
    session: SessionDep,
    status: Annotated[
        list[JobStatus] | None, Query(max_length=6, description="Only these statuses.")
    ] = None,
    kind: Annotated[str | None, Query(max_length=128, pattern=r"^[a-z0-9_.]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobList:
    """The tenant's jobs, newest first (`limit` default 50, max 200; `next` → `cursor=`)."""
    page = await list_jobs(
        session, principal.tenant_id, statuses=status or (), kind=kind, limit=limit, cursor=cursor
    )
    return JobList(items=[job_out(view) for view in page.items], next=page.next_cursor)


@router.get("/{job_id}", response_model=JobOut, responses=problem_responses(401, 403, 404, 503))
async def read_job(job_id: uuid.UUID, principal: TenantAdmin, session: SessionDep) -> JobOut:
    """One job: status, progress, timestamps, result summary, last error."""
    return job_out(await get_job(session, principal.tenant_id, job_id))


@router.post(
    "/{job_id}/cancel", response_model=JobOut, responses=problem_responses(401, 403, 404, 503)
)
async def cancel_tenant_job(
    job_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> JobOut:
    """Cancel: a waiting job at once (`cancelled`); a running one at its next progress report
    (`cancel_requested` true until then). A finished job is answered as it is."""
    view = await cancel_job(session, principal.tenant_id, job_id)
    await _audit(resources, principal, request, action="job:cancel", view=view)
    return job_out(view)


@router.post(
    "/{job_id}/retry", response_model=JobOut, responses=problem_responses(401, 403, 404, 409, 503)
)
async def retry_tenant_job(
    job_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> JobOut:
    """Queue a failed or cancelled job again (its recorded steps are not redone); any other
    status → 409 `job_not_retryable`."""
    view = await retry_job(session, principal.tenant_id, job_id)
    await _audit(resources, principal, request, action="job:retry", view=view)
    return job_out(view)
