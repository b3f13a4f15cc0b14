"""The platform's own periodic job: finished jobs are deleted after the retention period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa

from ehr.core.config import get_settings
from ehr.core.db.models import Job
from ehr.platform.jobs.definitions import JobDefinition, define
from ehr.platform.jobs.queue import queue_schema_of
from ehr.platform.jobs.run import JobRun

__all__ = ["BUILTIN_JOBS", "PRUNE_FINISHED"]

_FINAL: Final = ("succeeded", "failed", "cancelled", "aborted")


async def prune_finished(run: JobRun) -> Mapping[str, Any]:
    """Delete our records of jobs finished before the cutoff, then the queue's finished rows
    with no event since it (data minimisation; the audit trail keeps who asked for what)."""
    days = get_settings().jobs.retention_days
    async with run.sessionmaker() as session, session.begin():
        records = await session.execute(
            sa.delete(Job).where(
                Job.finished_at.is_not(None),
                Job.finished_at < sa.func.now() - sa.func.make_interval(0, 0, 0, days),
                Job.id != run.job_id,
            )
        )
        schema = queue_schema_of(session)
        # The schema name passed validate_schema_name; the values are bound.
        queue_rows = await session.execute(
            sa.text(
                f'DELETE FROM "{schema}".procrastinate_jobs AS j '  # noqa: S608
                "WHERE j.status::text = ANY(:final) AND NOT EXISTS ("
                f'SELECT 1 FROM "{schema}".procrastinate_events AS e '
                "WHERE e.job_id = j.id AND e.at > now() - make_interval(days => :days))"
            ),
            {"final": list(_FINAL), "days": days},
        )
    return {
        "records_deleted": getattr(records, "rowcount", 0),
        "queue_rows_deleted": getattr(queue_rows, "rowcount", 0),
    }


PRUNE_FINISHED: Final = define(
    "jobs.prune_finished",
    prune_finished,
    cron="17 3 * * *",
    max_attempts=3,
    description="Delete finished jobs older than EHR_JOBS__RETENTION_DAYS (daily, 03:17).",
)

BUILTIN_JOBS: Final[tuple[JobDefinition, ...]] = (PRUNE_FINISHED,)
