"""Background jobs (ADR 0024): procrastinate's queue in PostgreSQL, our job records, the worker's
runtime and ``/api/jobs``.

For modules::

    from ehr.platform import jobs

    IMPORT = jobs.define("bulk.import", run_import, exclusive=lambda t, args: f"import:{t}")
    JOBS = (IMPORT,)                       # the worker (ehr.entrypoints.worker) lists these

    job = await jobs.defer(session, IMPORT, tenant_id=..., owner="user:<id>", args={"file": id},
                           schedule_at=None)   # queued in the caller's transaction

    async def run_import(run: jobs.JobRun) -> dict | None:
        for n, page in enumerate(pages):
            await run.step(f"page-{n}", write_page)   # exactly once, even after a crash
            await run.report(n + 1, len(pages))       # progress; raises JobCancelled if asked

``define``: retries with backoff (``max_attempts``), ``exclusive`` (never two at once),
``queueing_lock`` (at most one waiting), ``cron`` (periodic platform jobs).
"""

from ehr.platform.jobs.builtin import BUILTIN_JOBS
from ehr.platform.jobs.definitions import (
    DEFAULT_QUEUE,
    Handler,
    JobDefinition,
    JobRegistry,
    define,
)
from ehr.platform.jobs.errors import (
    JobAlreadyQueuedError,
    JobCancelled,
    JobNotFoundError,
    JobNotRetryableError,
    JobSuperseded,
)
from ehr.platform.jobs.queue import JobStatus
from ehr.platform.jobs.router import job_out, router
from ehr.platform.jobs.run import JobRun, StepWork
from ehr.platform.jobs.service import (
    JobPage,
    JobView,
    cancel_job,
    defer,
    get_job,
    list_jobs,
    retry_job,
)
from ehr.platform.jobs.settings import JobsSettings

__all__ = [
    "BUILTIN_JOBS",
    "DEFAULT_QUEUE",
    "Handler",
    "JobAlreadyQueuedError",
    "JobCancelled",
    "JobDefinition",
    "JobNotFoundError",
    "JobNotRetryableError",
    "JobPage",
    "JobRegistry",
    "JobRun",
    "JobStatus",
    "JobSuperseded",
    "JobView",
    "JobsSettings",
    "StepWork",
    "cancel_job",
    "defer",
    "define",
    "get_job",
    "job_out",
    "list_jobs",
    "retry_job",
    "router",
]
