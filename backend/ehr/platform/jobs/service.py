"""Jobs from the API's and the CLI's side: defer, list, read, cancel, retry — all in the caller's
session (the request commits), all scoped to one tenant: a tenant never sees another's jobs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import Job
from ehr.core.errors import RequestValidationFailed
from ehr.platform.jobs.definitions import JobDefinition
from ehr.platform.jobs.errors import JobNotFoundError, JobNotRetryableError
from ehr.platform.jobs.queue import (
    QUEUE_STATUSES,
    JobStatus,
    cancel_queued,
    defer_queue_job,
    queue_jobs,
    queue_schema_of,
    status_of,
)

__all__ = [
    "JobPage",
    "JobView",
    "cancel_job",
    "decode_cursor",
    "defer",
    "get_job",
    "list_jobs",
    "retry_job",
]


@dataclass(frozen=True)
class JobView:
    """A job as the API shows it: our record and its queue row's status."""

    job: Job
    status: JobStatus
    attempts: int


@dataclass(frozen=True)
class JobPage:
    items: list[JobView]
    next_cursor: str | None


def _lock_for(job_id: uuid.UUID, definition_lock: str | None) -> str:
    # Every job holds a lock: its own id unless the kind shares one (``exclusive``). A retried
    # or recovered run therefore never runs next to a run of the same job.
    return definition_lock or f"job:{job_id}"


async def defer(
    session: AsyncSession,
    definition: JobDefinition,
    *,
    tenant_id: uuid.UUID | None,
    owner: str,
    args: Mapping[str, Any] | None = None,
    schedule_at: datetime | None = None,
) -> Job:
    """Queue a job of ``definition`` in the session's transaction (nothing is queued if it rolls
    back). ``args``: ids and options only (JSON), never PHI. ``schedule_at``: not before then.
    ``owner``: ``"<actor type>:<id>"``. A waiting job with the same queueing lock → 409."""
    values = dict(args or {})
    tenant = str(tenant_id) if tenant_id is not None else None
    job = Job(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        kind=definition.kind,
        owner=owner,
        queue=definition.queue,
        args=values,
        queueing_lock=definition.queueing_lock(tenant, values)
        if definition.queueing_lock
        else None,
        scheduled_at=schedule_at,
    )
    job.lock = _lock_for(
        job.id, definition.exclusive(tenant, values) if definition.exclusive else None
    )
    job.queue_job_id = await defer_queue_job(
        session,
        task_name=definition.kind,
        queue=job.queue,
        lock=job.lock,
        queueing_lock=job.queueing_lock,
        task_kwargs={"job_id": str(job.id)},
        scheduled_at=schedule_at,
    )
    session.add(job)
    await session.flush()
    return job


def _select(session: AsyncSession) -> sa.Select[Any]:
    queue = queue_jobs(queue_schema_of(session))
    return sa.select(
        Job, sa.cast(queue.c.status, sa.Text), queue.c.scheduled_at, queue.c.attempts
    ).outerjoin(queue, queue.c.id == Job.queue_job_id)


def _view(row: Any, now: datetime) -> JobView:
    job, queue_status, scheduled_at, attempts = row[0], row[1], row[2], row[3]
    return JobView(
        job=job, status=status_of(queue_status, scheduled_at, now), attempts=attempts or 0
    )


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor continues after; 422 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, job_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise RequestValidationFailed("cursor is not a cursor of this list") from None


async def list_jobs(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    statuses: Sequence[JobStatus] = (),
    kind: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> JobPage:
    """The tenant's jobs, newest first, ``limit`` per page (keyset on created_at, id)."""
    queue = queue_jobs(queue_schema_of(session))
    now = datetime.now(UTC)
    query = _select(session).where(Job.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if statuses:
        conditions: list[sa.ColumnElement[bool]] = []
        for status in statuses:
            condition: sa.ColumnElement[bool] = sa.cast(queue.c.status, sa.Text).in_(
                QUEUE_STATUSES[status]
            )
            if status is JobStatus.SCHEDULED:
                condition = sa.and_(condition, queue.c.scheduled_at > now)
            elif status is JobStatus.QUEUED:
                condition = sa.and_(
                    condition, sa.or_(queue.c.scheduled_at.is_(None), queue.c.scheduled_at <= now)
                )
            conditions.append(condition)
        query = query.where(sa.or_(*conditions))
    if cursor is not None:
        created, job_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(Job.created_at, Job.id) < sa.tuple_(created, job_id))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    views = [_view(row, now) for row in rows[:limit]]
    next_cursor = encode_cursor(views[-1].job) if len(rows) > limit and views else None
    return JobPage(items=views, next_cursor=next_cursor)


async def get_job(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    job_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> JobView:
    """One job of the tenant (``tenant_id`` None: a platform job, for the operator CLI); 404
    otherwise — another tenant's job is not found, not forbidden."""
    query = _select(session).where(Job.id == job_id)
    query = query.where(
        Job.tenant_id.is_(None) if tenant_id is None else Job.tenant_id == tenant_id
    )
    if for_update:
        query = query.with_for_update(of=Job)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise JobNotFoundError("No job with this id for this tenant.")
    return _view(row, datetime.now(UTC))


async def cancel_job(
    session: AsyncSession, tenant_id: uuid.UUID | None, job_id: uuid.UUID
) -> JobView:
    """Ask for cancellation: a waiting job is cancelled at once; a running one sees it at its
    next progress report. A finished job is left as it is (idempotent: cancel twice is fine)."""
    view = await get_job(session, tenant_id, job_id, for_update=True)
    if view.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        return view
    job = view.job
    job.cancel_requested = True
    job.updated_at = datetime.now(UTC)
    if job.queue_job_id is not None and await cancel_queued(session, job.queue_job_id):
        job.finished_at = datetime.now(UTC)
    await session.flush()
    return await get_job(session, tenant_id, job_id)


async def retry_job(
    session: AsyncSession, tenant_id: uuid.UUID | None, job_id: uuid.UUID
) -> JobView:
    """Queue a failed or cancelled job again (a new queue row, the same job: its finished steps
    are not redone). Anything else → 409 ``job_not_retryable``."""
    view = await get_job(session, tenant_id, job_id, for_update=True)
    if view.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobNotRetryableError(
            "Only a failed or cancelled job can be retried.", extra={"status": str(view.status)}
        )
    job = view.job
    job.queue_job_id = await defer_queue_job(
        session,
        task_name=job.kind,
        queue=job.queue,
        lock=job.lock,
        queueing_lock=job.queueing_lock,
        task_kwargs={"job_id": str(job.id)},
        scheduled_at=None,
    )
    job.cancel_requested = False
    job.error = None
    job.finished_at = None
    job.updated_at = datetime.now(UTC)
    await session.flush()
    return await get_job(session, tenant_id, job_id)
