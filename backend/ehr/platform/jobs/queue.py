"""The job queue's rows seen from our SQLAlchemy sessions: where it lives, its statuses in our
words, and deferring a job inside the caller's transaction.

procrastinate's tables live in ``<app schema>_queue`` (migration 0010). Its functions have their
``search_path`` pinned there, so a session of the API calls them schema-qualified and the job is
queued in the same transaction as the caller's own writes (and our ``jobs`` row): committed
together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableClause

from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import MODEL_SCHEMA, job_queue_schema
from ehr.platform.jobs.errors import JobAlreadyQueuedError

__all__ = [
    "QUEUE_STATUSES",
    "JobStatus",
    "app_schema_of",
    "cancel_queued",
    "defer_queue_job",
    "queue_jobs",
    "status_of",
]

# The partial unique index behind a queueing lock (procrastinate's schema.sql).
_QUEUEING_LOCK_INDEX: Final = "procrastinate_jobs_queueing_lock_idx_v1"


class JobStatus(StrEnum):
    """A job's status as the API shows it."""

    SCHEDULED = "scheduled"  # queued, not before scheduled_at
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Our statuses → procrastinate's (``scheduled`` and ``queued`` are both ``todo``).
QUEUE_STATUSES: Final[Mapping[JobStatus, tuple[str, ...]]] = {
    JobStatus.SCHEDULED: ("todo",),
    JobStatus.QUEUED: ("todo",),
    JobStatus.RUNNING: ("doing",),
    JobStatus.SUCCEEDED: ("succeeded",),
    JobStatus.FAILED: ("failed",),
    JobStatus.CANCELLED: ("cancelled", "aborted"),
}


def status_of(queue_status: str | None, scheduled_at: datetime | None, now: datetime) -> JobStatus:
    """Our status for a queue row's status (a job whose queue row is gone counts as finished by
    what it recorded; the caller passes None then and gets ``succeeded`` only if it says so)."""
    if queue_status == "todo":
        if scheduled_at is not None and scheduled_at > now:
            return JobStatus.SCHEDULED
        return JobStatus.QUEUED
    if queue_status == "doing":
        return JobStatus.RUNNING
    if queue_status == "succeeded":
        return JobStatus.SUCCEEDED
    if queue_status in ("cancelled", "aborted"):
        return JobStatus.CANCELLED
    return JobStatus.FAILED


def app_schema_of(session: AsyncSession) -> str:
    """The app schema the session's engine maps the models onto (``schema_translate_map``)."""
    options = session.get_bind().get_execution_options()
    mapping = options.get("schema_translate_map") or {}
    return str(mapping.get(MODEL_SCHEMA, MODEL_SCHEMA))


@lru_cache(maxsize=16)
def queue_jobs(queue_schema: str) -> TableClause:
    """``procrastinate_jobs`` of ``queue_schema`` (read-only columns the API needs)."""
    return sa.table(
        "procrastinate_jobs",
        sa.column("id", sa.BigInteger),
        sa.column("status", sa.Text),
        sa.column("scheduled_at", sa.DateTime(timezone=True)),
        sa.column("attempts", sa.Integer),
        sa.column("queue_name", sa.Text),
        schema=validate_schema_name(queue_schema),
    )


def queue_schema_of(session: AsyncSession) -> str:
    return validate_schema_name(job_queue_schema(app_schema_of(session)))


async def defer_queue_job(
    session: AsyncSession,
    *,
    task_name: str,
    queue: str,
    lock: str | None,
    queueing_lock: str | None,
    task_kwargs: Mapping[str, Any],
    scheduled_at: datetime | None,
    priority: int = 0,
) -> int:
    """Queue one job in the session's transaction; its id. A waiting job with the same
    ``queueing_lock`` → :class:`JobAlreadyQueuedError` (the transaction stays usable)."""
    schema = queue_schema_of(session)
    # The schema name passed validate_schema_name; every value is a bound parameter.
    statement = sa.text(
        f'SELECT unnest("{schema}".procrastinate_defer_jobs_v1(ARRAY[ROW('
        "CAST(:queue AS varchar), CAST(:task AS varchar), CAST(:priority AS integer), "
        "CAST(:lock AS text), CAST(:queueing_lock AS text), CAST(:args AS jsonb), "
        f'CAST(:scheduled_at AS timestamptz))]::"{schema}".procrastinate_job_to_defer_v1[]))'
    )
    params = {
        "queue": queue,
        "task": task_name,
        "priority": priority,
        "lock": lock,
        "queueing_lock": queueing_lock,
        "args": json.dumps(dict(task_kwargs)),
        "scheduled_at": scheduled_at,
    }
    try:
        async with session.begin_nested():
            job_id = (await session.execute(statement, params)).scalar_one()
    except IntegrityError as exc:
        if _QUEUEING_LOCK_INDEX in str(exc.orig):
            raise JobAlreadyQueuedError(
                "A job with the same queueing lock is waiting in the queue.",
                extra={"queueing_lock": queueing_lock},
            ) from None
        raise
    return int(job_id)


async def cancel_queued(session: AsyncSession, queue_job_id: int) -> bool:
    """Cancel the queue row if it still waits (``todo`` → ``cancelled``); False when a worker has
    it already (the handler then sees the cancellation at its next progress report)."""
    schema = queue_schema_of(session)
    statement = sa.text(f'SELECT "{schema}".procrastinate_cancel_job_v1(:id, false, false)')
    found = (await session.execute(statement, {"id": queue_job_id})).scalar_one_or_none()
    return found is not None
