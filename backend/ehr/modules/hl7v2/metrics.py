"""HL7 v2 interface metrics (ADR 0033): the listener's own /metrics, the API's and the worker's.

Labels are codes, never message content: ``sender`` is the registration's name (an operator's
label such as ``lab-main``) or ``unknown``; ``event`` is ``ADT_A01``-style or ``unparsed``.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACKS",
    "ACK_SECONDS",
    "CONNECTIONS",
    "CONVERSIONS",
    "FRAMES_REFUSED",
    "MESSAGES",
    "OUTBOUND",
]

MESSAGES: Final = Counter(
    "ehr_hl7_messages",  # exposed as ehr_hl7_messages_total
    "HL7 v2 messages received, by channel (mllp, http), sender, event and ACK code.",
    ["channel", "sender", "event", "ack"],
)
ACKS: Final = Counter(
    "ehr_hl7_acks",
    "Acknowledgements sent, by ACK code (AA/AE/AR/CA/CE/CR) and whether it was a duplicate's.",
    ["ack", "duplicate"],
)
ACK_SECONDS: Final = Histogram(
    "ehr_hl7_ack_seconds",
    "From a whole message received to its ACK written (store before ACK included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FRAMES_REFUSED: Final = Counter(
    "ehr_hl7_frames_refused",
    "MLLP frames answered AR without reading a message: too large, truncated.",
    ["reason"],
)
CONNECTIONS: Final = Gauge(
    "ehr_hl7_connections", "Open MLLP connections.", multiprocess_mode="livesum"
)
CONVERSIONS: Final = Counter(
    "ehr_hl7_conversions",
    "Conversions to FHIR by event and outcome (converted, retrying, dead).",
    ["event", "outcome"],
)
OUTBOUND: Final = Counter(
    "ehr_hl7_outbound",
    "Outbound messages by event and what happened (queued, acked, refused, failed, parked).",
    ["event", "outcome"],
)
