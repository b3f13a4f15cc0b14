"""The worker's Prometheus metrics (served on its own /metrics, ADR 0024)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "JOBS_FINISHED",
    "JOBS_RECOVERED",
    "JOBS_RETRIED",
    "JOB_DURATION",
    "QUEUE_DEPTH",
]

JOBS_FINISHED: Final = Counter(
    "ehr_jobs_finished",  # exposed as ehr_jobs_finished_total
    "Job runs that ended, by kind and outcome (succeeded, failed, cancelled, released).",
    ["kind", "outcome"],
)
JOBS_RETRIED: Final = Counter(
    "ehr_jobs_retried",
    "Job runs that were not a job's first (after a failure, a release or a stalled worker).",
    ["kind"],
)
JOBS_RECOVERED: Final = Counter(
    "ehr_jobs_recovered",
    "Running jobs of a worker presumed dead (no heartbeat) put back in the queue.",
)
JOB_DURATION: Final = Histogram(
    "ehr_job_duration_seconds",
    "How long a job run took, by kind and outcome.",
    ["kind", "outcome"],
    buckets=(0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
)
QUEUE_DEPTH: Final = Gauge(
    "ehr_jobs_queue_depth",
    "Jobs in the queue by status (todo, doing, succeeded, failed, cancelled, aborted), "
    "as a worker last counted them.",
    ["status"],
)
