"""The worker's side: a procrastinate app whose tasks are our job definitions, each wrapped so
that the job's record (run count, progress, result, error) follows the queue; the retry
strategy; and the recovery of jobs whose worker died.

A job killed mid-run (``kill -9`` of the worker, a lost node) stays ``doing`` in the queue with
the dead worker's id. procrastinate 3 workers write a heartbeat every
``EHR_JOBS__HEARTBEAT_SECONDS``; :func:`recover_stalled` — run by every worker at start and every
``EHR_JOBS__SWEEP_SECONDS`` — asks procrastinate for the running jobs of workers without a
heartbeat for ``EHR_JOBS__STALLED_AFTER_SECONDS`` (``JobManager.get_stalled_jobs``) and puts them
back in the queue (``JobManager.retry_job``), the recovery procrastinate's documentation gives
("Retry stalled jobs"). The next run starts with a new fencing token, skips the steps already
recorded, and completes the job.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import procrastinate
import sqlalchemy as sa
import structlog
from procrastinate import JobContext
from procrastinate.exceptions import ConnectorException, JobAborted
from procrastinate.jobs import Job as QueueJob
from procrastinate.psycopg_connector import PsycopgConnector
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import DatabaseSettings
from ehr.core.db.engine import libpq_url
from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import Job, job_queue_schema
from ehr.core.errors import AppError
from ehr.platform.jobs.definitions import JobDefinition, JobRegistry
from ehr.platform.jobs.errors import JobCancelled, JobSuperseded
from ehr.platform.jobs.metrics import (
    JOB_DURATION,
    JOBS_FINISHED,
    JOBS_RECOVERED,
    JOBS_RETRIED,
    QUEUE_DEPTH,
)
from ehr.platform.jobs.run import JobRun

__all__ = [
    "QUEUE_STATUS_NAMES",
    "JobRetryStrategy",
    "build_queue_app",
    "count_queue",
    "recover_stalled",
]

logger = structlog.get_logger(__name__)

QUEUE_STATUS_NAMES: Final = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
_MAX_ERROR: Final = 1000
PERIODIC_OWNER: Final = "system:periodic"


class JobRetryStrategy(BaseRetryStrategy):
    """A definition's retries: exponential backoff with jitter up to ``max_attempts`` runs; a
    run released at shutdown goes back at once; a cancelled or replaced run is never retried."""

    def __init__(self, definition: JobDefinition) -> None:
        self.definition = definition

    def get_retry_decision(
        self, *, exception: BaseException, job: QueueJob
    ) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_in={"seconds": 0})
        if isinstance(exception, JobAborted):
            return None
        if job.attempts + 1 >= self.definition.max_attempts:
            return None
        delay = min(
            self.definition.retry_max_seconds,
            self.definition.retry_base_seconds * 2**job.attempts,
        )
        # Full jitter on the upper half: retries of many jobs that failed together spread out.
        return RetryDecision(retry_in={"seconds": delay * random.uniform(0.5, 1.0)})  # noqa: S311


def _error_text(exc: BaseException) -> str:
    # Our own errors carry texts written for callers (no PHI); any other exception is recorded
    # by its type only (its message may quote data).
    if isinstance(exc, AppError):
        return f"{exc.code}: {exc.detail}"[:_MAX_ERROR]
    return type(exc).__name__[:_MAX_ERROR]


async def _start_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    definition: JobDefinition,
    queue_job: QueueJob,
    job_id: str | None,
    timestamp: int | None,
) -> tuple[Job, bool] | None:
    """Count a new run on the job's record (created for a periodic job); None when the record
    is gone (its tenant was deleted)."""
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        job: Job | None
        if job_id is not None:
            job = await session.get(Job, uuid.UUID(job_id), with_for_update=True)
        else:
            job = await session.scalar(
                sa.select(Job).where(Job.queue_job_id == queue_job.id).with_for_update()
            )
            if job is None:
                job = Job(
                    id=uuid.uuid4(),
                    tenant_id=None,
                    kind=definition.kind,
                    owner=PERIODIC_OWNER,
                    queue=queue_job.queue,
                    queue_job_id=queue_job.id,
                    args={"timestamp": timestamp} if timestamp is not None else {},
                    lock=queue_job.lock,
                    queueing_lock=queue_job.queueing_lock,
                )
                session.add(job)
        if job is None:
            return None
        job.run_count = (job.run_count or 0) + 1
        job.queue_job_id = queue_job.id
        job.started_at = now
        job.finished_at = None
        job.updated_at = now
        cancelled = bool(job.cancel_requested)
        await session.flush()
        return job, cancelled


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    run: JobRun,
    *,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    now = datetime.now(UTC)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(Job)
            .where(Job.id == run.job_id, Job.run_count == run.run)
            .values(
                result=dict(result) if result is not None else Job.result,
                error=error,
                finished_at=now,
                updated_at=now,
            )
        )


def _task_function(
    definition: JobDefinition, sessionmaker: async_sessionmaker[AsyncSession]
) -> Any:
    async def run_job(
        context: JobContext, job_id: str | None = None, timestamp: int | None = None
    ) -> None:
        started = time.monotonic()
        queue_job = context.job
        begun = await _start_run(sessionmaker, definition, queue_job, job_id, timestamp)
        if begun is None:
            logger.warning("jobs.run.record_missing", kind=definition.kind, queue_job=queue_job.id)
            return
        job, cancelled = begun
        run = JobRun(
            job_id=job.id,
            tenant_id=job.tenant_id,
            kind=job.kind,
            args=dict(job.args),
            run=job.run_count,
            sessionmaker=sessionmaker,
        )
        if run.run > 1:
            JOBS_RETRIED.labels(definition.kind).inc()
        log = logger.bind(kind=definition.kind, job_id=str(job.id), run=run.run)
        log.info("jobs.run.started", queue_job=queue_job.id, attempts=queue_job.attempts)
        outcome = "failed"
        try:
            if cancelled:
                raise JobCancelled(f"job {job.id} cancelled before it started")
            result = await definition.handler(run)
            await _finish(sessionmaker, run, result=result)
            outcome = "succeeded"
        except JobSuperseded:
            outcome = "superseded"
            raise
        except JobCancelled:
            outcome = "cancelled"
            await _finish(sessionmaker, run)
            raise
        except asyncio.CancelledError:
            outcome = "released"  # shutdown: back in the queue (JobRetryStrategy)
            raise
        except Exception as exc:
            await _finish(sessionmaker, run, error=_error_text(exc))
            raise
        finally:
            elapsed = time.monotonic() - started
            JOBS_FINISHED.labels(definition.kind, outcome).inc()
            JOB_DURATION.labels(definition.kind, outcome).observe(elapsed)
            log.info("jobs.run.ended", outcome=outcome, seconds=round(elapsed, 3))

    run_job.__name__ = f"run_{definition.kind.replace('.', '_')}"
    return run_job


def build_queue_app(
    db: DatabaseSettings,
    registry: JobRegistry,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    pool_size: int = 8,
) -> procrastinate.App:
    """A procrastinate app on the app schema's queue, one task per definition (name = kind)."""
    queue_schema = validate_schema_name(job_queue_schema(db.app_schema))
    connector = PsycopgConnector(
        conninfo=libpq_url(db),
        kwargs={"options": f"-c search_path={queue_schema}", "application_name": "ehr-worker"},
        min_size=1,
        max_size=pool_size,
    )
    app = procrastinate.App(connector=connector)
    for definition in registry:
        task = app.task(
            name=definition.kind,
            queue=definition.queue,
            pass_context=True,
            retry=JobRetryStrategy(definition),
        )(_task_function(definition, sessionmaker))
        if definition.cron is not None:
            # One slot's job at a time, and none waiting behind a slow one.
            app.periodic(
                cron=definition.cron,
                periodic_id=definition.kind,
                lock=f"periodic:{definition.kind}",
                queueing_lock=f"periodic:{definition.kind}",
            )(task)
    return app


async def recover_stalled(app: procrastinate.App, *, stalled_after_seconds: float) -> int:
    """Put the running jobs of workers presumed dead back in the queue; how many were."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_seconds)
    recovered = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:  # another worker's sweep was first, or it just finished
            continue
        recovered += 1
        JOBS_RECOVERED.inc()
        logger.warning(
            "jobs.stalled.recovered", kind=job.task_name, queue_job=job.id, worker=job.worker_id
        )
    return recovered


async def count_queue(app: procrastinate.App) -> dict[str, int]:
    """Jobs in the queue by status (every status, 0 when none); also sets the depth gauge."""
    rows = await app.connector.execute_query_all_async(
        "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs GROUP BY status"
    )
    counts = dict.fromkeys(QUEUE_STATUS_NAMES, 0)
    for row in rows:
        counts[str(row["status"])] = int(row["n"])
    for status, count in counts.items():
        QUEUE_DEPTH.labels(status).set(count)
    return counts


def retention_cutoff(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
