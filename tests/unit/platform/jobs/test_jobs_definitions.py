"""Job definitions, the registry, the retry strategy, our statuses, cursors and the worker's
connection string: the parts of the jobs package that need no database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from procrastinate.jobs import Job as QueueJob
from procrastinate.retry import RetryDecision
from pydantic import SecretStr

from ehr.core.config import DatabaseSettings
from ehr.core.db.engine import libpq_url
from ehr.core.db.models import Job
from ehr.core.errors import NotFoundError, RequestValidationFailed
from ehr.entrypoints.worker import WORKER_JOBS, load_jobs
from ehr.platform import jobs
from ehr.platform.jobs.queue import QUEUE_STATUSES, JobStatus, status_of
from ehr.platform.jobs.runtime import JobRetryStrategy, _error_text
from ehr.platform.jobs.service import decode_cursor, encode_cursor

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


async def nothing(_run: jobs.JobRun) -> Mapping[str, Any] | None:
    return None


def _queue_job(attempts: int) -> QueueJob:
    return QueueJob(
        id=1, queue="default", lock=None, queueing_lock=None, task_name="a.b", attempts=attempts
    )


@pytest.mark.parametrize(
    "kind", ["import", "Bulk.import", "bulk.", "bulk import", "a." + "b" * 130]
)
def test_a_kind_is_area_dot_name_in_lower_case(kind: str) -> None:
    with pytest.raises(ValueError, match="job kind"):
        jobs.define(kind, nothing)


def test_define_refuses_a_bad_queue_attempts_or_cron() -> None:
    with pytest.raises(ValueError, match="queue"):
        jobs.define("a.b", nothing, queue="Not a queue")
    with pytest.raises(ValueError, match="max_attempts"):
        jobs.define("a.b", nothing, max_attempts=0)
    with pytest.raises(ValueError, match="cron"):
        jobs.define("a.b", nothing, cron="every day")
    assert jobs.define("a.b", nothing, cron="*/5 * * * *").cron == "*/5 * * * *"


def test_the_registry_refuses_a_kind_defined_twice() -> None:
    first = jobs.define("a.b", nothing)
    registry = jobs.JobRegistry([first, first])  # the same definition twice is one
    assert registry.kinds() == ["a.b"]
    with pytest.raises(ValueError, match="defined twice"):
        registry.add(jobs.define("a.b", nothing))


def test_the_worker_runs_the_platform_jobs_and_loads_a_modules_jobs() -> None:
    assert "jobs.prune_finished" in {definition.kind for definition in WORKER_JOBS}
    prune = next(d for d in WORKER_JOBS if d.kind == "jobs.prune_finished")
    assert prune.cron is not None
    with pytest.raises(SystemExit, match="JOBS"):
        load_jobs(["ehr.platform.jobs.errors"])  # a module without JOBS


def _retry_at(decision: RetryDecision | None) -> datetime:
    assert decision is not None
    assert decision.retry_at is not None
    return decision.retry_at


def test_retries_back_off_and_stop_at_max_attempts() -> None:
    strategy = JobRetryStrategy(
        jobs.define("a.b", nothing, max_attempts=3, retry_base_seconds=10, retry_max_seconds=25)
    )
    capping = JobRetryStrategy(
        jobs.define("a.b", nothing, max_attempts=9, retry_base_seconds=10, retry_max_seconds=25)
    )
    before = datetime.now(UTC)
    first = _retry_at(strategy.get_retry_decision(exception=RuntimeError(), job=_queue_job(0)))
    second = _retry_at(strategy.get_retry_decision(exception=RuntimeError(), job=_queue_job(1)))
    capped = _retry_at(capping.get_retry_decision(exception=RuntimeError(), job=_queue_job(5)))
    after = datetime.now(UTC)
    # 10 s then 20 s, capped at 25 s; jitter keeps the upper half of each.
    assert before + timedelta(seconds=5) <= first <= after + timedelta(seconds=10)
    assert before + timedelta(seconds=10) <= second <= after + timedelta(seconds=20)
    assert before + timedelta(seconds=12.5) <= capped <= after + timedelta(seconds=25)
    assert strategy.get_retry_decision(exception=RuntimeError(), job=_queue_job(2)) is None


def test_a_released_run_goes_back_at_once_and_a_cancelled_one_never() -> None:
    strategy = JobRetryStrategy(jobs.define("a.b", nothing, max_attempts=1))
    released = strategy.get_retry_decision(exception=asyncio.CancelledError(), job=_queue_job(7))
    assert released is not None
    assert strategy.get_retry_decision(exception=jobs.JobCancelled(), job=_queue_job(0)) is None
    assert strategy.get_retry_decision(exception=jobs.JobSuperseded(), job=_queue_job(0)) is None


@pytest.mark.parametrize(
    ("queue_status", "scheduled_at", "expected"),
    [
        ("todo", None, JobStatus.QUEUED),
        ("todo", NOW - timedelta(seconds=1), JobStatus.QUEUED),
        ("todo", NOW + timedelta(hours=1), JobStatus.SCHEDULED),
        ("doing", None, JobStatus.RUNNING),
        ("succeeded", None, JobStatus.SUCCEEDED),
        ("failed", None, JobStatus.FAILED),
        ("cancelled", None, JobStatus.CANCELLED),
        ("aborted", None, JobStatus.CANCELLED),
    ],
)
def test_queue_statuses_in_our_words(
    queue_status: str, scheduled_at: datetime | None, expected: JobStatus
) -> None:
    assert status_of(queue_status, scheduled_at, NOW) is expected
    assert queue_status in QUEUE_STATUSES[expected]


def test_a_cursor_round_trips_and_a_forged_one_is_422() -> None:
    job_id = uuid.uuid4()
    job = Job(id=job_id, created_at=NOW)
    assert decode_cursor(encode_cursor(job)) == (NOW, job_id)
    with pytest.raises(RequestValidationFailed):
        decode_cursor("not-a-cursor")


def test_the_worker_and_the_relay_connect_with_libpq_parameters() -> None:
    db = DatabaseSettings(url=SecretStr("postgresql+asyncpg://ehr:p%40ss@db:5432/ehr?ssl=require"))
    assert libpq_url(db) == "postgresql://ehr:p%40ss@db:5432/ehr?sslmode=require"
    plain = DatabaseSettings(url=SecretStr("postgresql+asyncpg://ehr:pw@db:5432/ehr"))
    assert libpq_url(plain) == "postgresql://ehr:pw@db:5432/ehr"


def test_a_failed_runs_error_keeps_our_texts_and_only_the_type_of_others() -> None:
    assert _error_text(RuntimeError("patient Jane Doe")) == "RuntimeError"
    assert _error_text(NotFoundError("No such thing")) == "not_found: No such thing"
