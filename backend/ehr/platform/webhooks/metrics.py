"""Webhook delivery metrics (served on the worker's /metrics, ADR 0026)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

__all__ = ["ATTEMPTS", "ATTEMPT_LATENCY", "ENDPOINTS_DISABLED"]

ATTEMPTS: Final = Counter(
    "ehr_webhook_attempts",  # exposed as ehr_webhook_attempts_total
    "Webhook delivery attempts by what followed (succeeded, retrying, failed).",
    ["decision"],
)
ATTEMPT_LATENCY: Final = Histogram(
    "ehr_webhook_attempt_seconds",
    "How long a webhook attempt took (connect to answer, or to the timeout).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)
ENDPOINTS_DISABLED: Final = Counter(
    "ehr_webhook_endpoints_disabled",
    "Endpoints disabled after a sustained failure.",
)
