"""The ``/api/hl7v2`` documents: sender registrations and the inbox (ADR 0033)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EVENT_PATTERN",
    "DestinationCreate",
    "DestinationList",
    "DestinationOut",
    "MessageDetail",
    "MessageList",
    "MessageOut",
    "MessageStatus",
    "OutboundList",
    "OutboundOut",
    "OutboundStatus",
    "ReplayOut",
    "SenderCreate",
    "SenderList",
    "SenderOut",
    "SenderUpdate",
]

EVENT_PATTERN = r"^(\*|[A-Z0-9]{3}_(\*|[A-Z0-9]{3}))$"
MessageStatus = Literal["accepted", "converted", "rejected", "failed", "dead"]
EventPattern = Annotated[str, Field(pattern=EVENT_PATTERN, max_length=7)]
# HD (hierarchic designator) as it appears in MSH-3..6: printable, no field separator.
HdText = Annotated[str, Field(min_length=1, max_length=227, pattern=r"^[^|\r\n\x00-\x1f]+$")]
OptionalHdText = Annotated[str, Field(max_length=227, pattern=r"^[^|\r\n\x00-\x1f]*$")]


ProcessingId = Literal["P", "T", "D"]


def _production_only() -> list[ProcessingId]:
    return ["P"]


class SenderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
        description="An operator's label (`lab-main`): the metrics' `sender` label.",
    )
    sending_application: HdText = Field(description="MSH-3 exactly as the sender sends it.")
    sending_facility: HdText = Field(description="MSH-4 exactly as the sender sends it.")
    receiving_application: OptionalHdText = Field(
        default="", description="MSH-5 to match; empty: any."
    )
    receiving_facility: OptionalHdText = Field(
        default="", description="MSH-6 to match; empty: any."
    )
    message_types: list[EventPattern] = Field(
        min_length=1,
        max_length=100,
        description="Events it may send: `ADT_A01`, `ORU_*` (every trigger) or `*`.",
    )
    processing_ids: list[ProcessingId] = Field(
        default_factory=_production_only,
        min_length=1,
        max_length=3,
        description="MSH-11 values accepted: P production, T training, D debugging.",
    )
    ack_destination_id: uuid.UUID | None = Field(
        default=None,
        description="Where its enhanced-mode application ACKs (MSH-16) are sent: a "
        "destination of this tenant that takes `ACK` (the sender's own listener). "
        "None: they are kept on the message only.",
    )


class SenderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ack_destination_id: uuid.UUID | None = Field(
        description="A destination that takes `ACK`, or null to stop sending application ACKs."
    )


class SenderOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_types: list[str]
    processing_ids: list[str]
    ack_destination_id: uuid.UUID | None
    enabled: bool
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


class SenderList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[SenderOut]


class MessageOut(BaseModel):
    """An inbox entry without its body."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    sender_id: uuid.UUID
    control_id: str = Field(description="MSH-10.")
    message_type: str = Field(description="`ADT_A01`: MSH-9 type and trigger.")
    version: str
    channel: Literal["mllp", "http"]
    status: MessageStatus
    ack_code: str = Field(description="MSA-1 of the acknowledgement the sender got.")
    error: str | None = Field(description="Why it was refused or is a dead letter.")
    patient_identifier: str | None = Field(description="`system|value` of PID-3.")
    attempts: int
    received_at: datetime
    converted_at: datetime | None
    resources: dict[str, Any] | None = Field(
        description="What the conversion wrote: counts per type and the resources' ids."
    )


class MessageDetail(MessageOut):
    """An inbox entry with the message and its acknowledgements (PHI: audited)."""

    raw: str = Field(description="The message as received (segments ended by CR).")
    ack: str
    application_ack: str | None


class MessageList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[MessageOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ReplayOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queued: list[uuid.UUID]


OutboundEvent = Literal["ORU_R01", "ADT_A08", "ACK"]
OutboundStatus = Literal["pending", "acked", "sent", "parked"]


class DestinationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$",
        description="The receiver's host name or IP address (its MLLP listener).",
    )
    port: int = Field(ge=1, le=65535)
    tls: bool = Field(default=False, description="MLLP over TLS (certificate checked).")
    message_types: list[OutboundEvent] = Field(
        min_length=1,
        max_length=3,
        description="`ORU_R01` final results, `ADT_A08` patients, `ACK` the application "
        "acknowledgements of senders that name this destination.",
    )
    receiving_application: HdText = Field(description="MSH-5 of the messages sent there.")
    receiving_facility: HdText = Field(description="MSH-6 of the messages sent there.")


class DestinationOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str
    host: str
    port: int
    tls: bool
    message_types: list[str]
    receiving_application: str
    receiving_facility: str
    enabled: bool
    created_by: str
    created_at: datetime
    disabled_at: datetime | None


class DestinationList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DestinationOut]


class OutboundOut(BaseModel):
    """An outbound message without its body."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    destination_id: uuid.UUID
    sequence: int = Field(description="Delivery order within the destination.")
    message_type: str
    control_id: str = Field(description="Its MSH-10.")
    source: str = Field(description="The FHIR resource version it reports.")
    status: OutboundStatus = Field(
        description="`acked` answered AA/CA; `sent` an application ACK written (not answered)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    ack_code: str | None
    created_at: datetime
    acked_at: datetime | None


class OutboundList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OutboundOut]
