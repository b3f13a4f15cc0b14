"""The webhooks' settings (``EHR_WEBHOOKS__*``), a settings class of its own like
``EHR_EVENTS__*`` until it joins :class:`ehr.core.config.Settings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebhooksSettings"]


class WebhooksSettings(BaseSettings):
    """Targets allowed, timeouts, retries and when a failing endpoint is disabled."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_WEBHOOKS__", env_file=".env", extra="ignore", frozen=True
    )

    # SSRF guard: allow loopback, private, link-local... targets (tests, on-premise receivers).
    allow_private_targets: bool = False
    # Allow http:// targets outside development (EHR_ENV=development always allows them).
    allow_http: bool = False
    # Per attempt: connecting, reading the answer, and the whole request at most.
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    total_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    # Attempts of one delivery before it is ``failed``.
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Retry n waits uniform(0, min(max, base * 2^(n-1))) (full jitter), at least min; a
    # Retry-After answer is honoured (capped at max).
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_min_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # An endpoint failing this many attempts in a row, over at least this long, is disabled.
    disable_after_failures: int = Field(default=20, ge=1)
    disable_after_seconds: float = Field(default=24 * 3600.0, ge=0)
