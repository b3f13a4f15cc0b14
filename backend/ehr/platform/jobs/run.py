"""What a handler gets: :class:`JobRun` — the job's ids and args, progress reports that carry
cancellation back, and steps recorded exactly once.

Handlers must be idempotent: a run can end anywhere (a worker killed mid-run is found by its
missing heartbeat and the job runs again). The tools for that:

- ``await run.step("page-3", work)``: ``work(session)`` runs and the step is recorded in the SAME
  transaction (``job_steps``, under the run's fencing token); a later run finds the record and
  gets the stored result back without running ``work`` again. Database effects of a step happen
  exactly once.
- An effect outside our database (a FHIR write, a webhook) goes in a step too, made idempotent
  by its own key: a conditional create (``If-None-Exist`` on an identifier derived from
  ``run.job_id`` and the step) or the receiver's idempotency key.
- ``await run.report(done, total)`` stores progress and raises :class:`JobCancelled` when a
  cancellation was asked for, or :class:`JobSuperseded` when a newer run replaced this one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import Job, JobStep
from ehr.platform.jobs.errors import JobCancelled, JobSuperseded

__all__ = ["JobRun", "StepWork"]

StepWork = Callable[[AsyncSession], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class JobRun:
    """One run of one job (``run`` is the job's fencing token for this run)."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID | None
    kind: str
    args: Mapping[str, Any]
    run: int
    sessionmaker: async_sessionmaker[AsyncSession]

    async def report(self, done: int, total: int | None = None) -> None:
        """Record progress (``done`` of ``total``); the point where a cancellation is seen."""
        async with self.sessionmaker() as session, session.begin():
            cancel = await session.scalar(
                sa.update(Job)
                .where(Job.id == self.job_id, Job.run_count == self.run)
                .values(progress_done=done, progress_total=total, updated_at=datetime.now(UTC))
                .returning(Job.cancel_requested)
            )
        if cancel is None:
            raise JobSuperseded(f"run {self.run} of job {self.job_id} was replaced")
        if cancel:
            raise JobCancelled(f"job {self.job_id} cancelled")

    async def cancel_requested(self) -> bool:
        """True when a cancellation was asked for (without recording progress)."""
        async with self.sessionmaker() as session:
            value = await session.scalar(
                sa.select(Job.cancel_requested).where(Job.id == self.job_id)
            )
        return bool(value)

    async def step(self, name: str, work: StepWork) -> Mapping[str, Any] | None:
        """Run ``work`` once for this job: in one transaction with the step's record. Already
        recorded (an earlier run did it) → its stored result, ``work`` is not called."""
        async with self.sessionmaker() as session, session.begin():
            done = await session.get(JobStep, (self.job_id, name))
            if done is not None:
                return done.result
            # The job row's lock orders this step against a newer run starting: a replaced run
            # records nothing.
            current = await session.scalar(
                sa.select(Job.run_count).where(Job.id == self.job_id).with_for_update()
            )
            if current != self.run:
                raise JobSuperseded(f"run {self.run} of job {self.job_id} was replaced")
            result = await work(session)
            stored = dict(result) if result is not None else None
            inserted = await session.scalar(
                insert(JobStep)
                .values(job_id=self.job_id, step=name, result=stored, run=self.run)
                .on_conflict_do_nothing()
                .returning(JobStep.step)
            )
            if inserted is None:  # pragma: no cover - excluded by the row lock above
                raise JobSuperseded(f"step {name!r} of job {self.job_id} was recorded meanwhile")
            return stored
