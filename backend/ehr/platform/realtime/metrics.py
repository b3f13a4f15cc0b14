"""Prometheus metrics of the realtime channel (served by ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["CONNECTIONS", "DISCONNECTS", "EVENTS_SENT"]

CONNECTIONS = Gauge(
    "ehr_realtime_connections", "Realtime subscribers connected to this process", ["transport"]
)
EVENTS_SENT = Counter(
    "ehr_realtime_events_sent_total", "Events sent to realtime subscribers", ["transport"]
)
DISCONNECTS = Counter(
    "ehr_realtime_disconnects_total",
    "Realtime connections ended, by close code",
    ["transport", "code"],
)
