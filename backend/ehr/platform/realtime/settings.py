"""The realtime channel's settings (``EHR_REALTIME__*``), read like the service's own.

A settings class of its own (same environment and ``.env``), like ``EHR_EVENTS__*``, until it
joins :class:`ehr.core.config.Settings` as its ``realtime`` section.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RealtimeSettings"]


class RealtimeSettings(BaseSettings):
    """How long a client may take to authenticate, how often it hears from us, and how far
    behind it may fall before it is disconnected."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_REALTIME__", env_file=".env", extra="ignore", frozen=True
    )

    # The first WebSocket message (the credential) must arrive within this.
    auth_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # A heartbeat message (with the client's resume position) this often when idle.
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # The credential is checked again this often (revocation, disabled account, roles removed).
    revalidate_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Messages waiting for one client; beyond: the client is too slow and is disconnected.
    send_queue_max: int = Field(default=1_000, ge=1, le=100_000)
    # One send taking longer than this (the client stopped reading): disconnected too.
    send_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Stream entries a resume may scan; beyond, the client is told to resynchronise.
    resume_max_entries: int = Field(default=20_000, ge=1, le=1_000_000)
    # The live reader's XREAD BLOCK (below the Redis client's socket timeout, 2 s by default).
    read_block_ms: int = Field(default=1_000, ge=10, le=1_500)
    read_batch: int = Field(default=500, ge=1, le=10_000)
