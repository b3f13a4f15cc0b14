"""MSH of the outbound messages: HL7 v2.5.1 (``OUTBOUND_VERSION``), the sending and receiving
application and facility, original acknowledgement mode unless enhanced mode is asked for
(MSH-15/16), and MSH-18 ``UNICODE UTF-8`` when the message is not plain ASCII.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from ehr.modules.hl7v2.er7 import Er7, FieldValue, datetime_to_dtm, header_segment

__all__ = ["OUTBOUND_VERSION", "msh"]

OUTBOUND_VERSION: Final = "2.5.1"

_ACK_TYPES: Final = frozenset({"AL", "NE", "ER", "SU"})


def msh(
    message_type: Er7,
    segments: Sequence[str],
    *,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    control_id: str,
    timestamp: dt.datetime,
    processing_id: str,
    accept_ack: str | None,
    application_ack: str | None,
) -> Er7:
    if not control_id or len(control_id) > 20:
        raise ValueError("control_id must be 1 to 20 characters")
    for value in (accept_ack, application_ack):
        if value is not None and value not in _ACK_TYPES:
            raise ValueError(f"{value!r} is not an acknowledgement type (table 0155)")
    if application_ack is not None and accept_ack is None:
        raise ValueError("application_ack needs accept_ack (enhanced mode)")
    fields: dict[int, FieldValue] = {
        3: sending_application,
        4: sending_facility,
        5: receiving_application,
        6: receiving_facility,
        7: datetime_to_dtm(timestamp),
        9: message_type,
        10: control_id,
        11: processing_id,
        12: OUTBOUND_VERSION,
    }
    if accept_ack is not None:
        fields[15] = accept_ack
        fields[16] = application_ack or "NE"
    names = (sending_application, sending_facility, receiving_application, receiving_facility)
    if not all(text.isascii() for text in (*segments, *names)):
        fields[18] = "UNICODE UTF-8"
    return header_segment(fields)
