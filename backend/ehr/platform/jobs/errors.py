"""The job API's refusals (problem+json through the one error hierarchy) and the signals a
running job's handler meets (cancellation, a replaced run)."""

from __future__ import annotations

from procrastinate.exceptions import JobAborted

from ehr.core.errors import ConflictError, NotFoundError

__all__ = [
    "JobAlreadyQueuedError",
    "JobCancelled",
    "JobNotFoundError",
    "JobNotRetryableError",
    "JobSuperseded",
]


class JobNotFoundError(NotFoundError):
    """No job with this id for the caller's tenant (another tenant's job is not found either)."""

    code = "job_not_found"
    title = "Job not found"


class JobNotRetryableError(ConflictError):
    """Only a failed or cancelled job is retried (a queued or running one is already going)."""

    code = "job_not_retryable"
    title = "Job cannot be retried in its state"


class JobAlreadyQueuedError(ConflictError):
    """A job with the same queueing lock is already waiting: the new one is not queued."""

    code = "job_already_queued"
    title = "A job with the same queueing lock is already queued"


class JobCancelled(JobAborted):
    """Raised by ``run.report(...)`` when cancellation was asked for: the run ends ``cancelled``
    (procrastinate's ``aborted``; never retried). A handler may catch it to clean up, then
    re-raise."""


class JobSuperseded(JobAborted):
    """This run was replaced by a newer run of the same job (its worker was presumed dead and the
    job put back in the queue): it must stop without recording anything."""
