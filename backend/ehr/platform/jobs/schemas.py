"""The ``/api/jobs`` documents (no job arguments: they are ids for the worker, not for display)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ehr.platform.jobs.queue import JobStatus

__all__ = ["JobList", "JobOut", "JobProgress"]


class JobProgress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    done: int = Field(ge=0)
    total: int | None = Field(default=None, ge=0)


class JobOut(BaseModel):
    """A job: its status (from the queue), progress, timestamps, result summary, last error."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    kind: str
    status: JobStatus
    owner: str
    progress: JobProgress
    attempts: int = Field(description="Runs the queue counted (failures, releases, recoveries).")
    runs: int = Field(description="Runs that started.")
    cancel_requested: bool
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    result: dict[str, Any] | None = Field(description="Summary the job returned (ids, counts).")
    error: str | None = Field(description="The last run's error: a code and text, or a type.")


class JobList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[JobOut]
    next: str | None = Field(description="Cursor of the next page (`cursor=`), None at the end.")
