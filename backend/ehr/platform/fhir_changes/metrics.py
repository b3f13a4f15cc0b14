"""Prometheus metrics of the FHIR change feed."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

__all__ = ["NOTIFICATIONS"]

NOTIFICATIONS: Final = Counter(
    "ehr_fhir_notifications_total",
    "HAPI subscription notifications by outcome (taken, replayed, refused, malformed).",
    ["outcome"],
)
