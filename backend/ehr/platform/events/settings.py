"""The domain events' settings (``EHR_EVENTS__*``), read like the service's own.

A settings class of its own (same environment and ``.env``), like ``EHR_JOBS__*``, until it
joins :class:`ehr.core.config.Settings` as its ``events`` section.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["EventsSettings"]


class EventsSettings(BaseSettings):
    """How the relay moves the outbox to Redis and how consumers retry."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_EVENTS__", env_file=".env", extra="ignore", frozen=True
    )

    # The stream is ``<stream_prefix>:<app schema>`` (one stream, the tenant is a field).
    stream_prefix: str = "ehr:events"
    # XADD ... MAXLEN ~ this: the stream is a window, the outbox the record.
    stream_maxlen: int = Field(default=100_000, ge=1_000)
    # Rows the relay takes per transaction.
    relay_batch: int = Field(default=200, ge=1, le=5_000)
    # The relay wakes on NOTIFY; without one it still looks this often.
    relay_poll_seconds: float = Field(default=2.0, gt=0)
    # Redis (or PostgreSQL) failing: the relay waits base * 2^n, at most max, with jitter.
    relay_backoff_base_seconds: float = Field(default=0.5, gt=0)
    relay_backoff_max_seconds: float = Field(default=30.0, gt=0)
    # Entries one consumer reads per XREADGROUP, and how long it blocks waiting for them (below
    # the Redis client's socket timeout, EHR_REDIS__SOCKET_TIMEOUT_SECONDS, 2 s by default).
    consumer_batch: int = Field(default=50, ge=1, le=1_000)
    consumer_block_ms: int = Field(default=1_000, ge=10, le=1_500)
    # A handler that has not finished after this long is presumed dead: its entry may be
    # claimed by another consumer. Also the first retry's delay.
    handler_timeout_seconds: float = Field(default=30.0, gt=0)
    # Retry n (n >= 1) of a failed entry waits max(handler_timeout, base * 2^(n-1)), capped.
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    # Deliveries of one entry to one handler before it becomes a dead letter.
    max_attempts: int = Field(default=5, ge=1, le=100)
    # Relayed outbox rows, receipts and replayed dead letters older than this are deleted by the
    # daily ``events.prune`` job. Receipts go with the outbox rows they answer: a replay of a row
    # still in the outbox always finds its receipts.
    retention_days: int = Field(default=14, ge=1)
    # How often the relay counts the outbox (depth and lag gauges).
    gauge_seconds: float = Field(default=10.0, gt=0)
