"""The worker's and the job queue's settings (``EHR_JOBS__*``), read like the service's own.

They are a settings class of their own (same environment and ``.env``, prefix ``EHR_JOBS__``)
until they join :class:`ehr.core.config.Settings` as its ``jobs`` section.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["JobsSettings"]


class JobsSettings(BaseSettings):
    """How ``ehr worker`` runs jobs and how it finds the jobs of a worker that died."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_JOBS__", env_file=".env", extra="ignore", frozen=True
    )

    # Jobs one worker process runs at the same time (asyncio tasks).
    concurrency: int = Field(default=4, ge=1, le=64)
    # The queues this worker takes jobs from (JSON list); empty = every queue.
    queues: list[str] = Field(default_factory=list)
    # The worker's /health and /metrics (0 = no HTTP port).
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=9465, ge=0, le=65535)
    # How often a worker writes its heartbeat row (procrastinate_workers.last_heartbeat).
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # A worker whose heartbeat is older than this is presumed dead: its running jobs are put
    # back in the queue. Several heartbeat intervals, so that a slow database is not a death.
    stalled_after_seconds: float = Field(default=30.0, gt=0)
    # How often a worker looks for such jobs (and refreshes the queue-depth gauge).
    sweep_seconds: float = Field(default=15.0, gt=0)
    # On SIGTERM the running jobs get this long to finish; then they are released (put back in
    # the queue for another worker) and the worker exits. Below the orchestrator's kill delay.
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    # Finished jobs (queue rows and our records) are deleted after this many days.
    retention_days: int = Field(default=30, ge=1)
