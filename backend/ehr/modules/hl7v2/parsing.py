"""HL7 v2 (ER7) messages as a small, regular tree: python-hl7 parses (separators from MSH,
escape sequences, batches), this module normalises what arrives and gives every field the same
shape, so mapping code never meets python-hl7's "a string here, a list there".

    message = parse_message(raw)                 # bytes or str: BOM, \\r / \\n / CRLF, MSH-18
    message.header.message_type                  # "ADT", trigger "A01", structure "ADT_A01"
    pid = message.first("PID")                   # Segment | None
    pid.value(5, 1)                              # family name, unescaped; "" when absent
    for cx in pid.repetitions(3): cx.value(1), cx.value(4, 2)   # id, assigning authority OID
    message.segments("OBX")                      # every OBX, in order

Field, component and subcomponent numbers are 1-based as in the HL7 tables (``PID-3.4.2``).
MSH is numbered as the standard numbers it: MSH-1 is the field separator, MSH-2 the encoding
characters, MSH-9 the message type.

Refusals are :class:`MessageRejected` with the HL7 error code (table 0357) and the location
the ACK's ERR segment names.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import hl7

from ehr.modules.hl7v2.escaping import Unescape, unescaper

__all__ = [
    "SUPPORTED_VERSIONS",
    "Header",
    "Message",
    "MessageRejected",
    "Repetition",
    "Segment",
    "decode",
    "normalise",
    "parse_message",
    "split_batch",
]

SUPPORTED_VERSIONS: Final = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)

# HL7 table 0357 (message error condition codes) that the parser can raise.
SEGMENT_SEQUENCE_ERROR: Final = "100"
REQUIRED_FIELD_MISSING: Final = "101"
DATA_TYPE_ERROR: Final = "102"
UNSUPPORTED_MESSAGE_TYPE: Final = "200"
UNSUPPORTED_EVENT_CODE: Final = "201"
UNSUPPORTED_PROCESSING_ID: Final = "202"
UNSUPPORTED_VERSION_ID: Final = "203"
APPLICATION_INTERNAL_ERROR: Final = "207"

# MSH-18 values (HL7 table 0211) and the Python codec of each. An absent MSH-18 is ASCII in
# the standard; senders put Latin-1 and UTF-8 there anyway, so bytes are read as UTF-8 first.
_CHARSETS: Final[dict[str, str]] = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "UTF-8": "utf-8",
    "ISO IR6": "ascii",
    "ISO IR100": "latin-1",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "CNS 11643-1992": "big5",
    "BIG-5": "big5",
}

_SEGMENT_NAME: Final = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_MSH18: Final = re.compile(rb"^MSH(.)(?:[^\r\n]*?\1){16}([^\r\n]*?)(?:\1|\r|\n|$)")


class MessageRejected(Exception):  # noqa: N818 - HL7's word: the message is rejected
    """The message cannot be accepted as it is: ``code`` from HL7 table 0357, ``location``
    (``"MSH-12"``, ``"PID-7"``…) for the ERR segment, ``reject`` True for an AR/CR (the
    message itself is unusable) rather than an AE/CE (understood, but in error)."""

    def __init__(
        self, reason: str, *, code: str, location: str | None = None, reject: bool = True
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.location = location
        self.reject = reject


@dataclass(frozen=True, slots=True)
class Repetition:
    """One repetition of a field: components of subcomponents, unescaped."""

    components: tuple[tuple[str, ...], ...]

    def value(self, component: int = 1, subcomponent: int = 1) -> str:
        """``COMPONENT.SUBCOMPONENT`` (1-based), or ``""`` when absent."""
        if component < 1 or subcomponent < 1 or component > len(self.components):
            return ""
        parts = self.components[component - 1]
        return parts[subcomponent - 1] if subcomponent <= len(parts) else ""

    def component(self, component: int) -> tuple[str, ...]:
        """The subcomponents of one component (``()`` when absent)."""
        if 1 <= component <= len(self.components):
            return self.components[component - 1]
        return ()

    @property
    def is_empty(self) -> bool:
        return not any(part for parts in self.components for part in parts)

    @property
    def is_null(self) -> bool:
        """The explicit HL7 null ``""``: the receiver must clear the value it holds."""
        return self.components == (('""',),)


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its name and fields (field 0 is the name; MSH-1 is the field separator)."""

    name: str
    fields: tuple[tuple[Repetition, ...], ...]

    def repetitions(self, field: int) -> tuple[Repetition, ...]:
        """The non-empty repetitions of ``field`` (1-based)."""
        if field < 1 or field >= len(self.fields):
            return ()
        return tuple(rep for rep in self.fields[field] if not rep.is_empty)

    def first(self, field: int) -> Repetition | None:
        found = self.repetitions(field)
        return found[0] if found else None

    def value(self, field: int, component: int = 1, subcomponent: int = 1) -> str:
        """``FIELD.COMPONENT.SUBCOMPONENT`` of the first repetition, or ``""``."""
        first = self.first(field)
        return first.value(component, subcomponent) if first is not None else ""

    def has(self, field: int) -> bool:
        return bool(self.repetitions(field))


@dataclass(frozen=True, slots=True)
class Header:
    """What routing and acknowledgement need from MSH."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str
    message_type: str
    trigger_event: str
    structure: str
    control_id: str
    processing_id: str
    version: str
    accept_ack_type: str  # MSH-15: "" (original mode), AL, NE, ER, SU
    application_ack_type: str  # MSH-16
    character_set: str  # MSH-18, first repetition

    @property
    def enhanced_mode(self) -> bool:
        """Enhanced acknowledgement mode: MSH-15 or MSH-16 is valued (HL7 v2.5 2.9.3)."""
        return bool(self.accept_ack_type or self.application_ack_type)

    @property
    def event(self) -> str:
        """``ADT^A01`` as ``ADT_A01`` — the message type and trigger, not the structure."""
        return (
            f"{self.message_type}_{self.trigger_event}" if self.trigger_event else self.message_type
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message: its header and segments in order; ``text`` is the normalised ER7."""

    header: Header
    segment_list: tuple[Segment, ...]
    text: str

    def segments(self, name: str) -> tuple[Segment, ...]:
        return tuple(segment for segment in self.segment_list if segment.name == name)

    def first(self, name: str) -> Segment | None:
        return next((segment for segment in self.segment_list if segment.name == name), None)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segment_list)


def decode(raw: bytes) -> str:
    """Bytes to text: a UTF-8 BOM is dropped; MSH-18 names the charset when it is valued;
    otherwise UTF-8, and Latin-1 when the bytes are not UTF-8 (real feeds send both)."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    match = _MSH18.match(raw.lstrip())
    if match is not None:
        declared = match.group(2).split(b"~", 1)[0].decode("ascii", errors="ignore").strip()
        codec = _CHARSETS.get(declared.upper())
        if codec is not None and codec not in {"ascii", "utf-8"}:
            return raw.decode(codec, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def normalise(text: str) -> str:
    """One message's text as python-hl7 wants it: no BOM, no blank lines, segments ended by
    ``\\r`` whether they came with ``\\r``, ``\\n`` or CRLF; whitespace around it dropped."""
    text = text.lstrip("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)
    return "\r".join(line for line in lines if line.strip())


def split_batch(text: str) -> tuple[list[str], str | None]:
    """The messages of an HL7 batch or file (FHS/BHS … BTS/FTS) as separate texts, and the
    batch's control id (BHS-11, else FHS-11). A single message comes back alone.

    Lenient where senders commonly are (a file without BHS/BTS around its messages, a batch
    closed by the FTS), strict where messages could be lost or run together: FHS only first,
    every segment inside a message (a BHS in the middle of a message is refused), and a BTS-1
    / FTS-1 count that matches what it closes — a count that does not match means messages
    went missing on the way, so the batch is refused rather than half-taken."""
    normalised = normalise(text)
    lines = normalised.split("\r")
    if not lines or lines[0][:3] not in {"FHS", "BHS"}:
        return [normalised], None
    control_id: str | None = None
    messages: list[list[str]] = []
    batch_active = message_open = False
    in_batch = batches = 0
    for number, line in enumerate(lines):
        name = line[:3]
        parts = line.split(line[3:4] or "|")
        if name in {"FHS", "BHS"}:
            if name == "FHS" and number != 0:
                raise _envelope("FHS is allowed only as the first segment", "FHS")
            if name == "BHS":
                batches += 1 if batch_active else 0
                batch_active, in_batch = True, 0
            if len(parts) > 10 and parts[10]:
                control_id = parts[10]
            message_open = False
        elif name == "BTS":
            _check_count(parts, in_batch, "BTS")
            batches += 1
            batch_active = message_open = False
            in_batch = 0
        elif name == "FTS":
            batches += 1 if batch_active else 0
            _check_count(parts, batches, "FTS")
            batch_active = message_open = False
        elif name == "MSH":
            if not batch_active:
                batch_active, in_batch = True, 0
            messages.append([line])
            in_batch += 1
            message_open = True
        elif message_open:
            messages[-1].append(line)
        else:
            raise _envelope(f"Segment {name!r} in a batch outside any message", name)
    return ["\r".join(message) for message in messages], control_id


def _envelope(reason: str, location: str) -> MessageRejected:
    return MessageRejected(reason, code=SEGMENT_SEQUENCE_ERROR, location=location)


def _check_count(parts: list[str], counted: int, name: str) -> None:
    declared = parts[1].strip() if len(parts) > 1 else ""
    if declared and (not declared.isdigit() or int(declared) != counted):
        raise MessageRejected(
            f"{name}-1 declares {declared[:10]!r}, {counted} found",
            code=SEGMENT_SEQUENCE_ERROR,
            location=f"{name}-1",
        )


def parse_message(raw: bytes | str) -> Message:
    """Parse one message; raises :class:`MessageRejected` with the reason an ACK will give."""
    text = normalise(decode(raw) if isinstance(raw, bytes) else raw)
    if not text.startswith("MSH"):
        raise MessageRejected(
            "The message does not start with an MSH segment",
            code=SEGMENT_SEQUENCE_ERROR,
            location="MSH",
        )
    if len(text) < 8 or text[3] in "\r\n" or text[3].isalnum():
        raise MessageRejected(
            "MSH has no field separator and encoding characters",
            code=REQUIRED_FIELD_MISSING,
            location="MSH-2",
        )
    separator = text[3]
    encoding = text[4:9].split(separator, 1)[0]  # 2.7+: a fifth, truncation character
    if len(encoding) < 2 or len(set(encoding + separator)) != len(encoding) + 1:
        raise MessageRejected(
            f"MSH-2 encoding characters {encoding!r} are not distinct separators",
            code=DATA_TYPE_ERROR,
            location="MSH-2",
        )
    try:
        parsed = hl7.parse(text)
    except (hl7.ParseException, IndexError, ValueError) as exc:
        raise MessageRejected(
            f"The message cannot be parsed: {exc}", code=SEGMENT_SEQUENCE_ERROR
        ) from None
    unescape = unescaper(separator, encoding)
    segments = tuple(_segment(unescape, segment, separator) for segment in parsed)
    for segment in segments:
        if not _SEGMENT_NAME.match(segment.name):
            raise MessageRejected(
                f"{segment.name[:10]!r} is not a segment name",
                code=SEGMENT_SEQUENCE_ERROR,
                location=segment.name[:3] or None,
            )
    header = _header(segments[0], separator, encoding)
    return Message(header=header, segment_list=segments, text=text)


def _header(msh: Segment, separator: str, encoding: str) -> Header:
    header = Header(
        field_separator=separator,
        encoding_characters=encoding,
        sending_application=msh.value(3),
        sending_facility=msh.value(4),
        receiving_application=msh.value(5),
        receiving_facility=msh.value(6),
        timestamp=msh.value(7),
        message_type=msh.value(9, 1).upper(),
        trigger_event=msh.value(9, 2).upper(),
        structure=msh.value(9, 3).upper(),
        control_id=msh.value(10),
        processing_id=msh.value(11, 1).upper(),
        version=msh.value(12, 1),
        accept_ack_type=msh.value(15).upper(),
        application_ack_type=msh.value(16).upper(),
        character_set=msh.value(18).upper(),
    )
    for field, value in ((9, header.message_type), (10, header.control_id), (12, header.version)):
        if not value:
            raise MessageRejected(
                f"MSH-{field} is required", code=REQUIRED_FIELD_MISSING, location=f"MSH-{field}"
            )
    if len(header.control_id) > 199:
        raise MessageRejected(
            "MSH-10 is longer than 199 characters", code=DATA_TYPE_ERROR, location="MSH-10"
        )
    if header.version not in SUPPORTED_VERSIONS:
        raise MessageRejected(
            f"HL7 version {header.version[:20]!r} is not supported (2.3 to 2.8.2)",
            code=UNSUPPORTED_VERSION_ID,
            location="MSH-12",
        )
    return header


def _segment(unescape: Unescape, segment: hl7.Segment, separator: str) -> Segment:
    name = str(segment[0])
    fields: list[tuple[Repetition, ...]] = [(Repetition(((name,),)),)]
    start = 1
    if name == "MSH":
        # python-hl7 keeps MSH-1 and MSH-2 as they were: literal separators, not to be split.
        fields.append((Repetition(((separator,),)),))
        fields.append((Repetition(((str(segment[2]),),)),))
        start = 3
    for field in list(segment)[start:]:
        fields.append(_field(unescape, field))
    return Segment(name=name, fields=tuple(fields))


def _field(unescape: Unescape, field: object) -> tuple[Repetition, ...]:
    # python-hl7: a Field holds either plain strings (one repetition, one component) or
    # Repetitions; a Repetition holds strings or Components; a Component holds strings.
    if isinstance(field, str):
        return (Repetition(((unescape(field),),)),)
    items = list(field) if isinstance(field, Sequence) else [field]
    if items and all(isinstance(item, str) for item in items):
        return (Repetition(((unescape("".join(str(item) for item in items)),),)),)
    return tuple(_repetition(unescape, item) for item in items)


def _repetition(unescape: Unescape, repetition: object) -> Repetition:
    if isinstance(repetition, str):
        return Repetition(((unescape(repetition),),))
    components: list[tuple[str, ...]] = []
    for component in list(repetition) if isinstance(repetition, Sequence) else [repetition]:
        if isinstance(component, Sequence) and not isinstance(component, str):
            components.append(tuple(unescape(str(part)) for part in component))
        else:
            components.append((unescape(str(component)),))
    return Repetition(tuple(components))
