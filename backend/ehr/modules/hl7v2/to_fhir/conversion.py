"""What a conversion takes and gives: the inbox context, the resulting transaction, the error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Conversion", "ConversionContext", "ConversionError"]


@dataclass(frozen=True)
class ConversionContext:
    """Where the message came from in our system.

    ``message_id`` is the inbox row id (uuid hex, 32 characters): it keys the message's
    MessageHeader and Provenance (tag ``urn:ehr:hl7v2:message|v2-<message_id>``), so a replay of
    the same inbox row updates them. ``received_at`` (aware, UTC) is ``Provenance.recorded``.
    ``tenant`` only appears in the narrative text of MessageHeader and Provenance.
    """

    message_id: str
    received_at: datetime
    tenant: str


@dataclass(frozen=True)
class Conversion:
    """One message as one FHIR R4 transaction Bundle.

    ``patient_identifier`` is the ``system|value`` key of the message's (first) patient — the
    first usable PID-3 repetition — or None when the message has no PID. ``summary`` counts the
    bundle's entries per resource type (MessageHeader and Provenance included).
    """

    bundle: dict[str, Any]
    patient_identifier: str | None
    summary: dict[str, int]


class ConversionError(Exception):
    """The message cannot be converted as it is; it should go to the dead-letter list.

    Raised when the event is not supported, when a field the conversion keys on is missing
    (PID-3, the order numbers of an OBR, the visit number of a discharge…), when a strict field
    is malformed (birth date, observation and result times, administration times, appointment
    times, encounter period, Base64 content) or when two segments would write the same resource.

    ``reason`` says what is wrong in words and codes only, ``location`` names the field
    (``"PID-7"``, ``"OBR-3"``) or segment; neither ever carries a value from the message, so the
    error can be logged and stored without PHI.
    """

    def __init__(self, reason: str, location: str | None = None) -> None:
        super().__init__(f"{reason} ({location})" if location else reason)
        self.reason = reason
        self.location = location
