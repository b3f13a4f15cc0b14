"""HL7 v2 acknowledgements: building the ACK for an inbound message and reading one back.

    message = parse_message(raw)
    ack = build_ack(
        message.header, "AA", control_id=control_id(),
        receiving_app="EHR", receiving_facility="HOSP",
    )
    # refusing: one ERR per error (v2.5+ ERR-2/3/4/8; v2.3/2.4 ERR-1 element lists)
    ack = build_ack(
        message.header, "AE", control_id=control_id(), text="Birth date unreadable",
        errors=[AckError("102", "PID-7 is not a date", location="PID-7")],
        receiving_app="EHR", receiving_facility="HOSP",
    )
    # not even MSH could be read: what can be found of the sender and MSH-10, else blanks
    ack = build_ack_without_header(raw_text, "AR", "Not an HL7 v2 message",
                                   receiving_app="EHR", receiving_facility="HOSP")
    reply = read_ack(ack_text)       # AckReply(code="AA", control_id="MSG0001", text=None)

The ACK mirrors the inbound message: sender and receiver swapped, the same processing id
(MSH-11) and version (MSH-12) when that version is one we read (else 2.5.1), MSH-9
``ACK^<trigger>^ACK``, a new MSH-10, MSA-2 the inbound MSH-10. MSA-3 (text message) is sent
up to v2.6; v2.7 withdrew it, so there the text lives only in the ERR segments.

Version differences in ERR: v2.5 and later repeat ERR, one per error — ERR-2 location
(ERL ``SEG^seq^field``), ERR-3 the table 0357 code (``102^Data type error^HL70357``), ERR-4
severity (E/W/I), ERR-8 the user message. v2.3 and v2.4 have one ERR whose ERR-1 repeats an
element list per error (ELD ``SEG^seq^field^code&text&HL70357``); severity and message text
have no place there (the text goes in MSA-3).

An ACK that cannot be read raises :class:`~ehr.modules.hl7v2.parsing.MessageRejected`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ehr.modules.hl7v2.er7 import (
    Er7,
    composite,
    datetime_to_dtm,
    header_segment,
    message,
    numbered_segment,
    subcomposite,
)
from ehr.modules.hl7v2.er7 import control_id as new_control_id
from ehr.modules.hl7v2.parsing import (
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    SUPPORTED_VERSIONS,
    Header,
    MessageRejected,
    Repetition,
    Segment,
    parse_message,
)

__all__ = [
    "ACK_CODES",
    "DEFAULT_VERSION",
    "ERROR_CONDITIONS",
    "AckError",
    "AckReply",
    "Severity",
    "build_ack",
    "build_ack_without_header",
    "read_ack",
]

DEFAULT_VERSION: Final = "2.5.1"
ACK_CODES: Final = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
_POSITIVE: Final = frozenset({"AA", "CA"})

# HL7 table 0357, message error condition codes (v2.5.1; 104 from v2.7).
ERROR_CONDITIONS: Final[dict[str, str]] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

Severity = Literal["E", "W", "I"]
"""HL7 table 0516: error, warning, information."""

_LOCATION: Final = re.compile(
    r"^(?P<segment>[A-Z][A-Z0-9]{2})(?:\[(?P<sequence>\d{1,4})\])?"
    r"(?:-(?P<field>\d{1,3})(?:\.(?P<component>\d{1,3})(?:\.(?P<subcomponent>\d{1,3}))?)?)?$"
)
_TRIGGER: Final = re.compile(r"^[A-Z0-9]{1,3}$")
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class AckError:
    """One error to report: ``code`` from HL7 table 0357, ``text`` for the user (ERR-8),
    ``location`` as ``PID-7`` / ``PID-7.1`` / ``OBX[2]-5`` (segment, its occurrence, field,
    component), ``severity`` E/W/I (ERR-4)."""

    code: str
    text: str
    location: str | None = None
    severity: Severity = "E"

    @classmethod
    def from_rejection(cls, rejection: MessageRejected) -> AckError:
        """The error a parser refusal reports."""
        return cls(rejection.code, rejection.reason, rejection.location)


@dataclass(frozen=True, slots=True)
class AckReply:
    """What an acknowledgement says: MSA-1 ``code``, MSA-2 ``control_id`` (the acknowledged
    message's MSH-10), ``text`` (MSA-3, else the ERR user messages), the ``errors``."""

    code: str
    control_id: str
    text: str | None
    errors: tuple[AckError, ...] = ()

    @property
    def accepted(self) -> bool:
        """AA or CA: the message was accepted (application or commit)."""
        return self.code in _POSITIVE


# --------------------------------------------------------------------------- building


def build_ack(
    header: Header,
    code: str,
    *,
    control_id: str,
    text: str | None = None,
    errors: Sequence[AckError] = (),
    receiving_app: str,
    receiving_facility: str,
    timestamp: dt.datetime | None = None,
    application: bool = False,
) -> str:
    """The ACK for the message ``header`` came from, as ER7 text (segments ended by CR).

    ``code`` is MSA-1 (AA/AE/AR original mode, CA/CE/CR enhanced mode commit ACK);
    ``control_id`` the ACK's own MSH-10; ``receiving_app``/``receiving_facility`` name us
    (the ACK's MSH-3/4); ``timestamp`` MSH-7 (now when omitted); ``application``: an
    enhanced-mode application ACK, sent as a message of its own — MSH-15/16 ``NE`` (it is not
    to be acknowledged). Raises ``ValueError`` for a ``code`` that is not an acknowledgement
    code.
    """
    code = code.upper()
    if code not in ACK_CODES:
        raise ValueError(f"{code!r} is not an acknowledgement code (table 0008)")
    version = header.version if header.version in SUPPORTED_VERSIONS else DEFAULT_VERSION
    release = _release(version)
    trigger = header.trigger_event if _TRIGGER.match(header.trigger_event) else None
    message_type = (
        composite("ACK", trigger, "ACK") if release >= (2, 3, 1) else composite("ACK", trigger)
    )
    msh = header_segment(
        {
            3: receiving_app,
            4: receiving_facility,
            5: header.sending_application,
            6: header.sending_facility,
            7: datetime_to_dtm(timestamp or dt.datetime.now(dt.UTC)),
            9: message_type,
            10: control_id,
            11: header.processing_id or "P",
            12: version,
            **({15: "NE", 16: "NE"} if application else {}),
        }
    )
    msa = numbered_segment(
        "MSA", {1: code, 2: header.control_id, 3: text if release < (2, 7) else None}
    )
    segments: list[Er7] = [msh, msa]
    if errors and release < (2, 5):
        segments.append(numbered_segment("ERR", {1: [_element_list(e) for e in errors]}))
    elif errors:
        segments.extend(_error_segment(error) for error in errors)
    return message(segments)


def build_ack_without_header(
    raw_text: str | bytes,
    code: str,
    reason: str,
    *,
    errors: Sequence[AckError] | None = None,
    receiving_app: str = "",
    receiving_facility: str = "",
    control_id: str | None = None,
    timestamp: dt.datetime | None = None,
) -> str:
    """An ACK (usually AR) for input whose MSH could not be parsed.

    The sender (MSH-3/4), message type trigger, MSH-10, MSH-11 and MSH-12 are taken from
    the raw text with plain splitting where they can be found, else left empty (version
    2.5.1). ``reason`` is MSA-3; ``errors`` default to one table-0357 ``100`` error carrying
    ``reason``; ``control_id`` (the ACK's MSH-10) is generated when omitted. Never raises
    on any input text.
    """
    header = _header_from_raw(raw_text)
    if errors is None:
        errors = (AckError(SEGMENT_SEQUENCE_ERROR, reason, "MSH"),)
    return build_ack(
        header,
        code,
        control_id=control_id or new_control_id(),
        text=reason,
        errors=errors,
        receiving_app=receiving_app,
        receiving_facility=receiving_facility,
        timestamp=timestamp,
    )


def _error_segment(error: AckError) -> Er7:
    location = _location(error.location)
    return numbered_segment(
        "ERR",
        {
            2: composite(*location) if location else None,
            3: composite(error.code, _condition(error.code), "HL70357"),
            4: error.severity,
            8: error.text,
        },
    )


def _element_list(error: AckError) -> Er7:
    location = _location(error.location) or ["", "", ""]
    code = subcomposite(error.code, _condition(error.code), "HL70357")
    return composite(location[0], location[1], location[2] if len(location) > 2 else None, code)


def _location(location: str | None) -> list[str] | None:
    """ERL components for ``PID-7.1`` style locations (``None`` when not one)."""
    match = _LOCATION.match(location.strip().upper()) if location else None
    if match is None:
        return None
    parts = [match["segment"], match["sequence"] or "1"]
    if match["field"]:
        parts.append(str(int(match["field"])))
        if match["component"]:
            parts += ["1", str(int(match["component"]))]
            if match["subcomponent"]:
                parts.append(str(int(match["subcomponent"])))
    return parts


def _condition(code: str) -> str | None:
    return ERROR_CONDITIONS.get(code)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _header_from_raw(raw: str | bytes) -> Header:
    """What an ACK needs from a broken MSH, found by plain splitting (empty when not found)."""
    if isinstance(raw, bytes):
        text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="replace")
    else:
        text = raw
    fields: list[str] = []
    component = "^"
    start = text.find("MSH")
    if start >= 0 and len(text) > start + 4:
        separator = text[start + 3]
        if not separator.isalnum() and not separator.isspace():
            line = re.split(r"[\r\n]", text[start:], maxsplit=1)[0]
            fields = line.split(separator)
            encoding = fields[1] if len(fields) > 1 else ""
            if encoding and encoding[0] != separator and not encoding[0].isalnum():
                component = encoding[0]

    def value(index: int, limit: int = 180) -> str:
        # fields[0] is "MSH", fields[1] MSH-2: MSH-n is fields[n - 1].
        if index >= len(fields):
            return ""
        first = fields[index].split(component, 1)[0]
        return _CONTROL_CHARACTERS.sub("", first).strip()[:limit]

    def second_component(index: int) -> str:
        parts = fields[index].split(component) if index < len(fields) else []
        return parts[1].strip().upper() if len(parts) > 1 else ""

    processing_id = value(10).upper()
    return Header(
        field_separator="|",
        encoding_characters="^~\\&",
        sending_application=value(2),
        sending_facility=value(3),
        receiving_application=value(4),
        receiving_facility=value(5),
        timestamp="",
        message_type=value(8).upper()[:3],
        trigger_event=second_component(8),
        structure="",
        control_id=value(9, limit=199),
        processing_id=processing_id if processing_id in {"P", "T", "D"} else "P",
        version=value(11, limit=10),
        accept_ack_type="",
        application_ack_type="",
        character_set="",
    )


# --------------------------------------------------------------------------- reading


def read_ack(text: str | bytes) -> AckReply:
    """The acknowledgement in ``text`` (an ACK, or any message with an MSA).

    ``control_id`` is ``""`` when MSA-2 is empty (a sender's refusal of bytes it could not
    read as a message names no message). Raises :class:`MessageRejected` when the text is not
    a message or has no MSA-1.
    """
    reply = parse_message(text)
    msa = reply.first("MSA")
    if msa is None:
        raise MessageRejected(
            "The acknowledgement has no MSA segment", code=SEGMENT_SEQUENCE_ERROR, location="MSA"
        )
    code = msa.value(1).upper()
    if not code:
        raise MessageRejected("MSA-1 is required", code=REQUIRED_FIELD_MISSING, location="MSA-1")
    errors = tuple(error for err in reply.segments("ERR") for error in _errors_of(err))
    text_message = msa.value(3) or "; ".join(e.text for e in errors if e.text) or None
    return AckReply(code=code, control_id=msa.value(2), text=text_message, errors=errors)


def _errors_of(err: Segment) -> list[AckError]:
    if err.has(3) or err.has(2) or err.has(8):
        condition = err.first(3)
        code = condition.value(1) if condition is not None else ""
        text = err.value(8) or (condition.value(2) if condition is not None else "")
        flag = err.value(4).upper()
        severity: Severity = "W" if flag == "W" else "I" if flag == "I" else "E"
        return [
            AckError(
                code=code,
                text=text,
                location=_location_text(err.first(2)),
                severity=severity,
            )
        ]
    return [
        AckError(code=eld.value(4, 1), text=eld.value(4, 2), location=_location_text(eld))
        for eld in err.repetitions(1)
    ]


def _location_text(erl: Repetition | None) -> str | None:
    """``PID-7`` / ``OBX[2]-5`` / ``PID-5.1`` from an ERL or ELD (its first three components
    are the same)."""
    if erl is None or not erl.value(1):
        return None
    text = erl.value(1)
    sequence = erl.value(2)
    if sequence and sequence != "1":
        text += f"[{sequence}]"
    if erl.value(3):
        text += f"-{erl.value(3)}"
        if len(erl.components) > 4 and erl.value(5):
            text += f".{erl.value(5)}"
            if erl.value(6):
                text += f".{erl.value(6)}"
    return text
