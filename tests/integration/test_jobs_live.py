"""Background jobs against the real PostgreSQL and real ``ehr worker`` processes (ADR 0024).

Everything runs in a throwaway app schema (migrated to head here, dropped at the end with its
``_queue`` schema): the workers started here see only this test's queue. The job kinds below are
this module's ``JOBS``; the workers import them (``ehr worker --jobs-from test_jobs_live``).

- a job runs, reports progress, returns its summary (read through ``/api/jobs``);
- cancel: a waiting job at once; a running one at its next progress report;
- retry: a failed job queued again through ``/api/jobs/{id}/retry`` completes;
- tenant scoping: another tenant's admin gets 404 and an empty list;
- exclusive jobs never overlap, a queueing lock refuses a second waiting job;
- ``kill -9`` of the worker mid-job → a new worker completes it, every step's effect once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from support.database import Sessions, open_sessions
from support.in_process import serve
from support.ports import free_port
from support.principals import acting_as
from support.throwaway_schema import admin_of, tenant_rows, throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import Job, Tenant
from ehr.entrypoints.api import create_app
from ehr.platform import jobs
from ehr.platform.jobs.builtin import PRUNE_FINISHED
from ehr.platform.jobs.queue import app_schema_of

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
EFFECTS = "job_effects_test"
# How long a test waits for a state it expects (a wait, never an assertion on time).
PATIENCE_SECONDS = 60.0


# --- the job kinds the workers run ---------------------------------------------------------
def _effects(session: AsyncSession) -> str:
    return f'"{app_schema_of(session)}".{EFFECTS}'


async def count_items(run: jobs.JobRun) -> Mapping[str, Any]:
    """``items`` steps (none for a periodic run), each inserting one effect row (the table has
    no unique key: a step run twice would show twice), a progress report after each, ``pause``
    seconds between."""
    items = int(run.args.get("items", 0))
    pause = float(run.args.get("pause", 0))

    for item in range(items):

        async def effect(session: AsyncSession, item: int = item) -> Mapping[str, Any]:
            await session.execute(
                sa.text(f"INSERT INTO {_effects(session)} (job_id, item) VALUES (:j, :i)"),  # noqa: S608
                {"j": run.job_id, "i": item},
            )
            return {"item": item}

        await run.step(f"item-{item}", effect)
        await run.report(item + 1, items)
        await asyncio.sleep(pause)
    return {"items": items}


async def fail_unless_allowed(run: jobs.JobRun) -> Mapping[str, Any]:
    """Fails until an effect row with item -1 exists for the job (the test adds it)."""
    async with run.sessionmaker() as session:
        allowed = await session.scalar(
            sa.text(f"SELECT count(*) FROM {_effects(session)} WHERE job_id = :j AND item = -1"),  # noqa: S608
            {"j": run.job_id},
        )
    if not allowed:
        raise RuntimeError("not allowed yet")
    return {"allowed": True}


async def exclusive_interval(run: jobs.JobRun) -> Mapping[str, Any]:
    """Records its start and end (database clock) around a pause."""
    async with run.sessionmaker() as session, session.begin():
        await session.execute(
            sa.text(
                f"INSERT INTO {_effects(session)} (job_id, item, at) "  # noqa: S608
                "VALUES (:j, 0, clock_timestamp())"
            ),
            {"j": run.job_id},
        )
    await asyncio.sleep(float(run.args.get("pause", 0.3)))
    async with run.sessionmaker() as session, session.begin():
        await session.execute(
            sa.text(
                f"INSERT INTO {_effects(session)} (job_id, item, at) "  # noqa: S608
                "VALUES (:j, 1, clock_timestamp())"
            ),
            {"j": run.job_id},
        )
    return {}


COUNT = jobs.define("tests.count_items", count_items, max_attempts=3)
FLAKY = jobs.define("tests.fail_unless_allowed", fail_unless_allowed, max_attempts=1)
EXCLUSIVE = jobs.define(
    "tests.exclusive", exclusive_interval, exclusive=lambda _tenant, _args: "tests-exclusive"
)
SINGLE = jobs.define(
    "tests.single", count_items, queueing_lock=lambda tenant, _args: f"single:{tenant}"
)
# A periodic platform job every 2 seconds (cron with seconds last); only the worker of the
# periodic test runs it (the variable below), the others would pile up its rows.
TICK = jobs.define("tests.tick", count_items, cron="* * * * * */2")
PERIODIC_ENV = "EHR_JOBS_TEST_PERIODIC"
JOBS = (COUNT, FLAKY, EXCLUSIVE, SINGLE, *((TICK,) if os.environ.get(PERIODIC_ENV) else ()))


# --- the world: a schema, tenants, an API on them, workers -----------------------------------
@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "jobs_live") as local:
        engine = create_async_engine(settings.db.url.get_secret_value())
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    f'CREATE TABLE "{local.db.app_schema}".{EFFECTS} '
                    "(job_id uuid NOT NULL, item integer NOT NULL, at timestamptz)"
                )
            )
        await engine.dispose()
        yield local


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def tenants(sessions: Sessions) -> list[Tenant]:
    return await tenant_rows(sessions, "jobs", 1_900_000_000)


@pytest.fixture(scope="module")
async def http(schema_settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(schema_settings)
    async with serve(app) as client:
        yield app, client


class WorkerProcess:
    """``ehr worker`` in a subprocess on the test's schema (fast heartbeats and sweeps)."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 4,
        shutdown_grace_seconds: float = 5,
        periodic: bool = False,
    ) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "EHR_DB__URL": settings.db.url.get_secret_value(),
            "EHR_DB__APP_SCHEMA": settings.db.app_schema,
            "EHR_JOBS__CONCURRENCY": str(concurrency),
            "EHR_JOBS__HEALTH_PORT": str(self.port),
            "EHR_JOBS__HEARTBEAT_SECONDS": "0.5",
            "EHR_JOBS__STALLED_AFTER_SECONDS": "3",
            "EHR_JOBS__SWEEP_SECONDS": "0.5",
            "EHR_JOBS__SHUTDOWN_GRACE_SECONDS": str(shutdown_grace_seconds),
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
        }
        if periodic:
            env[PERIODIC_ENV] = "1"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "ehr.entrypoints.cli", "worker", "--jobs-from", __name__],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
            while asyncio.get_running_loop().time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"worker exited: {self.output()}")
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{self.port}/health")
                    ).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("worker not healthy")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def worker(settings: Settings, **options: Any) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, **options)
    try:
        yield process
    finally:
        process.stop()


async def defer(
    sessions: Sessions, definition: jobs.JobDefinition, tenant: Tenant, **args: Any
) -> uuid.UUID:
    async with sessions() as session, session.begin():
        job = await jobs.defer(
            session, definition, tenant_id=tenant.id, owner="user:test", args=args
        )
        return job.id


async def view(sessions: Sessions, tenant: Tenant, job_id: uuid.UUID) -> jobs.JobView:
    async with sessions() as session:
        return await jobs.get_job(session, tenant.id, job_id)


async def wait_for(
    sessions: Sessions, tenant: Tenant, job_id: uuid.UUID, predicate: Any
) -> jobs.JobView:
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while True:
        found = await view(sessions, tenant, job_id)
        if predicate(found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} stayed {found.status} ({found.job.progress_done})")
        await asyncio.sleep(0.1)


def finished(found: jobs.JobView) -> bool:
    return found.status in (
        jobs.JobStatus.SUCCEEDED,
        jobs.JobStatus.FAILED,
        jobs.JobStatus.CANCELLED,
    )


async def effects(engine_settings: Settings, job_id: uuid.UUID) -> list[tuple[int, Any]]:
    engine: AsyncEngine = create_async_engine(engine_settings.db.url.get_secret_value())
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.text(
                    f'SELECT item, at FROM "{engine_settings.db.app_schema}".{EFFECTS} '  # noqa: S608
                    "WHERE job_id = :j ORDER BY item, at"
                ),
                {"j": job_id},
            )
            return [(row[0], row[1]) for row in rows]
    finally:
        await engine.dispose()


# --- the tests ------------------------------------------------------------------------------
async def test_a_job_runs_reports_progress_and_is_read_through_the_api(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant, other = tenants
    app, client = http
    job_id = await defer(sessions, COUNT, tenant, items=4, pause=0)
    with acting_as(app, admin_of(tenant)):
        queued = (await client.get(f"/api/jobs/{job_id}")).json()
    assert queued["status"] == "queued"
    assert queued["progress"] == {"done": 0, "total": None}

    with worker(schema_settings) as process:
        await process.ready()
        done = await wait_for(sessions, tenant, job_id, finished)
    assert done.status is jobs.JobStatus.SUCCEEDED

    with acting_as(app, admin_of(tenant)):
        shown = (await client.get(f"/api/jobs/{job_id}")).json()
        listed = (await client.get("/api/jobs", params={"status": "succeeded"})).json()
    assert shown["progress"] == {"done": 4, "total": 4}
    assert shown["result"] == {"items": 4}
    assert shown["runs"] == 1
    assert shown["started_at"] is not None
    assert shown["finished_at"] is not None
    assert str(job_id) in {item["id"] for item in listed["items"]}
    assert [item for item, _ in await effects(schema_settings, job_id)] == [0, 1, 2, 3]

    # Another tenant's administrator: not found, not listed.
    with acting_as(app, admin_of(other)):
        assert (await client.get(f"/api/jobs/{job_id}")).status_code == 404
        assert (await client.post(f"/api/jobs/{job_id}/cancel")).status_code == 404
        assert (await client.get("/api/jobs")).json()["items"] == []


async def test_cancel_a_waiting_job_and_a_running_one(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant = tenants[0]
    app, client = http
    waiting = await defer(sessions, COUNT, tenant, items=2)
    with acting_as(app, admin_of(tenant)):
        answer = await client.post(f"/api/jobs/{waiting}/cancel")
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"

    running = await defer(sessions, COUNT, tenant, items=200, pause=0.05)
    with worker(schema_settings) as process:
        await process.ready()
        await wait_for(sessions, tenant, running, lambda v: v.job.progress_done >= 2)
        with acting_as(app, admin_of(tenant)):
            asked = (await client.post(f"/api/jobs/{running}/cancel")).json()
        assert asked["cancel_requested"] is True
        stopped = await wait_for(sessions, tenant, running, finished)
    assert stopped.status is jobs.JobStatus.CANCELLED
    assert stopped.job.progress_done < 200
    # The waiting job never ran.
    assert await effects(schema_settings, waiting) == []
    assert (await view(sessions, tenant, waiting)).job.run_count == 0


async def test_retry_a_failed_job(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant = tenants[0]
    app, client = http
    job_id = await defer(sessions, FLAKY, tenant)
    with worker(schema_settings) as process:
        await process.ready()
        failed = await wait_for(sessions, tenant, job_id, finished)
        assert failed.status is jobs.JobStatus.FAILED
        assert failed.job.error == "RuntimeError"  # the type only: messages may quote data

        with acting_as(app, admin_of(tenant)):
            refused = await client.post(f"/api/jobs/{uuid.uuid4()}/retry")
        assert refused.status_code == 404

        async with sessions() as session, session.begin():
            await session.execute(
                sa.text(
                    f'INSERT INTO "{schema_settings.db.app_schema}".{EFFECTS} '  # noqa: S608
                    "(job_id, item) VALUES (:j, -1)"
                ),
                {"j": job_id},
            )
        with acting_as(app, admin_of(tenant)):
            answer = await client.post(f"/api/jobs/{job_id}/retry")
        assert answer.status_code == 200
        assert answer.json()["status"] == "queued"
        done = await wait_for(sessions, tenant, job_id, finished)
    assert done.status is jobs.JobStatus.SUCCEEDED
    assert done.job.run_count == 2
    assert done.job.error is None
    with acting_as(app, admin_of(tenant)):
        again = await client.post(f"/api/jobs/{job_id}/retry")
    assert again.status_code == 409
    assert again.json()["code"] == "job_not_retryable"


async def test_exclusive_jobs_never_overlap_and_a_queueing_lock_refuses_a_second(
    schema_settings: Settings, sessions: Sessions, tenants: list[Tenant]
) -> None:
    tenant = tenants[0]
    first = await defer(sessions, SINGLE, tenant, items=1)
    with pytest.raises(jobs.JobAlreadyQueuedError):
        await defer(sessions, SINGLE, tenant, items=1)
    # Another tenant's key is another key.
    await defer(sessions, SINGLE, tenants[1], items=1)

    ids = [await defer(sessions, EXCLUSIVE, tenant, pause=0.3) for _ in range(3)]
    with worker(schema_settings, concurrency=4) as process:
        await process.ready()
        for job_id in [first, *ids]:
            assert (await wait_for(sessions, tenant, job_id, finished)).status is (
                jobs.JobStatus.SUCCEEDED
            )
    intervals = []
    for job_id in ids:
        marks = await effects(schema_settings, job_id)
        assert [item for item, _ in marks] == [0, 1]
        intervals.append((marks[0][1], marks[1][1]))
    intervals.sort()
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end, "two jobs with the same exclusive key ran at the same time"


async def test_kill_9_mid_job_then_a_new_worker_completes_it_exactly_once(
    schema_settings: Settings, sessions: Sessions, tenants: list[Tenant]
) -> None:
    tenant = tenants[0]
    items = 10
    job_id = await defer(sessions, COUNT, tenant, items=items, pause=0.3)
    first = WorkerProcess(schema_settings)
    try:
        await first.ready()
        mid = await wait_for(sessions, tenant, job_id, lambda v: v.job.progress_done >= 3)
        first.kill()
    finally:
        first.stop()
    assert mid.status is jobs.JobStatus.RUNNING
    before = len(await effects(schema_settings, job_id))
    assert 3 <= before < items, "the kill did not land in the middle of the job"

    with worker(schema_settings) as second:
        await second.ready()
        done = await wait_for(sessions, tenant, job_id, finished)
    assert done.status is jobs.JobStatus.SUCCEEDED
    assert done.job.run_count == 2  # the killed run and the one that completed it
    # Every step's effect exactly once: none lost, none repeated by the second run.
    assert [item for item, _ in await effects(schema_settings, job_id)] == list(range(items))
    async with sessions() as session:
        steps = await session.scalar(
            sa.text(
                f'SELECT count(*) FROM "{schema_settings.db.app_schema}".job_steps '  # noqa: S608
                "WHERE job_id = :j AND run = 1"
            ),
            {"j": job_id},
        )
    assert steps == before  # the first run's steps stayed its own


async def test_sigterm_lets_the_worker_exit_cleanly(
    schema_settings: Settings, sessions: Sessions, tenants: list[Tenant]
) -> None:
    tenant = tenants[0]
    job_id = await defer(sessions, COUNT, tenant, items=3, pause=0)
    process = WorkerProcess(schema_settings)
    await process.ready()
    await wait_for(sessions, tenant, job_id, finished)
    assert process.stop() == 0
    async with sessions() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    assert job.finished_at is not None


async def test_sigterm_mid_job_releases_it_and_the_next_worker_completes_it(
    schema_settings: Settings, sessions: Sessions, tenants: list[Tenant]
) -> None:
    tenant = tenants[0]
    items = 40
    job_id = await defer(sessions, COUNT, tenant, items=items, pause=0.1)
    first = WorkerProcess(schema_settings, shutdown_grace_seconds=0.2)
    await first.ready()
    await wait_for(sessions, tenant, job_id, lambda v: v.job.progress_done >= 2)
    assert first.stop() == 0  # SIGTERM: the grace ends, the job is released, exit 0
    released = await view(sessions, tenant, job_id)
    assert released.status is jobs.JobStatus.QUEUED
    assert released.job.progress_done < items

    with worker(schema_settings) as second:
        await second.ready()
        done = await wait_for(sessions, tenant, job_id, finished)
    assert done.status is jobs.JobStatus.SUCCEEDED
    assert done.job.run_count == 2
    assert [item for item, _ in await effects(schema_settings, job_id)] == list(range(items))


async def test_prune_finished_deletes_only_old_finished_jobs(
    schema_settings: Settings, sessions: Sessions, tenants: list[Tenant]
) -> None:
    tenant = tenants[1]
    old, recent = (
        await defer(sessions, COUNT, tenant, items=0),
        await defer(sessions, COUNT, tenant, items=0),
    )
    async with sessions() as session, session.begin():
        await session.execute(
            sa.update(Job)
            .where(Job.id == old)
            .values(finished_at=sa.func.now() - sa.text("interval '40 days'"))
        )
        await session.execute(
            sa.update(Job).where(Job.id == recent).values(finished_at=sa.func.now())
        )
    run = jobs.JobRun(
        job_id=uuid.uuid4(), tenant_id=None, kind="jobs.prune_finished", args={}, run=1,
        sessionmaker=sessions,
    )  # fmt: skip
    summary = await PRUNE_FINISHED.handler(run)
    assert summary is not None
    assert summary["records_deleted"] >= 1
    async with sessions() as session:
        assert await session.get(Job, old) is None
        assert await session.get(Job, recent) is not None


async def test_a_job_scheduled_for_later_waits_as_scheduled(
    sessions: Sessions, tenants: list[Tenant], http: tuple[Any, httpx.AsyncClient]
) -> None:
    tenant = tenants[1]
    app, client = http
    later = datetime.now(UTC) + timedelta(hours=1)
    async with sessions() as session, session.begin():
        job = await jobs.defer(
            session, COUNT, tenant_id=tenant.id, owner="user:test", args={}, schedule_at=later
        )
    with acting_as(app, admin_of(tenant)):
        listed = (await client.get("/api/jobs", params={"status": "scheduled"})).json()
        queued = (await client.get("/api/jobs", params={"status": "queued"})).json()
        cancelled = (await client.post(f"/api/jobs/{job.id}/cancel")).json()
    shown = {item["id"]: item for item in listed["items"]}
    assert shown[str(job.id)]["status"] == "scheduled"
    assert datetime.fromisoformat(shown[str(job.id)]["scheduled_at"]) == later
    assert str(job.id) not in {item["id"] for item in queued["items"]}
    assert cancelled["status"] == "cancelled"


async def test_a_periodic_job_is_deferred_and_run_by_the_worker(
    schema_settings: Settings, sessions: Sessions
) -> None:
    with worker(schema_settings, periodic=True) as process:
        await process.ready()
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        while True:
            async with sessions() as session:
                ran = (
                    await session.scalars(
                        sa.select(Job).where(
                            Job.kind == TICK.kind, Job.finished_at.is_not(None), Job.error.is_(None)
                        )
                    )
                ).all()
            if ran or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
    assert ran, "no periodic run finished"
    assert all(job.tenant_id is None and job.owner == "system:periodic" for job in ran)
    assert all("timestamp" in job.args for job in ran)
