"""The domain events' Prometheus metrics (default registry; the worker's /metrics serves them)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DEAD_LETTERS",
    "DELIVERY_LATENCY",
    "EVENTS_EMITTED",
    "EVENTS_HANDLED",
    "EVENTS_RELAYED",
    "HANDLER_RETRIES",
    "OUTBOX_DEPTH",
    "RELAY_FAILURES",
    "RELAY_LAG",
]

EVENTS_EMITTED: Final = Counter(
    "ehr_events_emitted",  # exposed as ehr_events_emitted_total
    "Events added to the outbox (counted at emit; a rolled-back transaction still counts).",
    ["type"],
)
OUTBOX_DEPTH: Final = Gauge(
    "ehr_events_outbox_depth",
    "Outbox rows not yet relayed to the stream, as the relay last counted them.",
    multiprocess_mode="max",
)
RELAY_LAG: Final = Gauge(
    "ehr_events_relay_lag_seconds",
    "Age of the oldest outbox row not yet relayed (0 when none), as the relay last saw it.",
    multiprocess_mode="max",
)
EVENTS_RELAYED: Final = Counter(
    "ehr_events_relayed",
    "Outbox rows written to the Redis stream (replays included).",
)
RELAY_FAILURES: Final = Counter(
    "ehr_events_relay_failures",
    "Relay rounds that failed, by what failed (redis, database).",
    ["cause"],
)
EVENTS_HANDLED: Final = Counter(
    "ehr_events_handled",
    "Stream entries a handler finished with, by handler and outcome "
    "(handled, duplicate: a receipt existed, skipped: not its type, dead_lettered).",
    ["handler", "outcome"],
)
HANDLER_RETRIES: Final = Counter(
    "ehr_events_handler_retries",
    "Deliveries of an entry to a handler after its first (failure or a consumer that died).",
    ["handler"],
)
DEAD_LETTERS: Final = Counter(
    "ehr_events_dead_letters",
    "Events a handler gave up on after the configured attempts.",
    ["handler"],
)
DELIVERY_LATENCY: Final = Histogram(
    "ehr_events_delivery_latency_seconds",
    "From the event's occurred_at to its handler's commit, by handler.",
    ["handler"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
