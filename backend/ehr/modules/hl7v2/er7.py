"""Composing HL7 v2 ER7 text safely: escaping, segments from fields, v2 dates, control ids.

Outbound messages always use the standard separators ``|^~\\&``. Values are plain text and
are escaped when they are placed; what is already ER7 (a composite built here) is an
:class:`Er7` and is placed as it is, so nothing is escaped twice::

    name = composite("O'Brien|Smith", "Ann")              # Er7("O'Brien\\F\\Smith^Ann")
    pid = segment("PID", "1", None, [cx_a, cx_b], None, name)   # a list is repetitions
    obr = numbered_segment("OBR", {1: "1", 4: code, 25: "F"})   # fields by number
    msh = header_segment({3: "EHR", 4: "HOSP", 7: to_dtm("2025-03-01T10:00:00+01:00"), ...})
    text = message([msh, pid, obr])                         # segments ended by CR

    to_dtm("2025-03-01T10:11:12.5-05:00")   # "20250301101112.5-0500" (precision and zone kept)
    to_dt("2025-03-01")                      # "20250301"
    control_id()                             # "0LZX3K9QA7F2M4B8C1D0" (≤ 20 characters)

Trailing empty fields, repetitions, components and subcomponents are trimmed, so a segment
never ends in ``|||``. ``escape(text, formatted=True)`` is for FT fields (line breaks become
``\\.br\\``); elsewhere a CR or LF becomes the hex escape ``\\X0D\\`` / ``\\X0A\\``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

__all__ = [
    "ENCODING_CHARACTERS",
    "FIELD_SEPARATOR",
    "Er7",
    "FieldValue",
    "Part",
    "composite",
    "control_id",
    "datetime_to_dtm",
    "escape",
    "header_segment",
    "message",
    "numbered_segment",
    "segment",
    "subcomposite",
    "to_dt",
    "to_dtm",
]

FIELD_SEPARATOR: Final = "|"
ENCODING_CHARACTERS: Final = "^~\\&"  # component, repetition, escape, subcomponent
SEGMENT_TERMINATOR: Final = "\r"


class Er7(str):
    """Text that is already ER7 (escaped, with separators meant as separators)."""

    __slots__ = ()


Part: TypeAlias = str | Er7 | None
"""One value to place: plain text (escaped), ER7 (placed as is) or nothing."""
FieldValue: TypeAlias = str | Er7 | Sequence[str | Er7 | None] | None
"""A field: one value, or a list of repetitions."""

_ESCAPES: Final[dict[str, str]] = {
    "\\": "\\E\\",
    "|": "\\F\\",
    "^": "\\S\\",
    "&": "\\T\\",
    "~": "\\R\\",
}
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# FHIR date/dateTime/instant: YYYY[-MM[-DD[Thh:mm[:ss[.f+]][Z|±hh:mm]]]]
_FHIR_MOMENT: Final = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_ID_ALPHABET: Final = string.digits + string.ascii_uppercase


def escape(text: str, *, formatted: bool = False) -> str:
    """``text`` as an ER7 value: ``\\ | ^ & ~`` as ``\\E\\ \\F\\ \\S\\ \\T\\ \\R\\``.

    Line breaks (CRLF, CR, LF) become ``\\.br\\`` when ``formatted`` (FT fields, NTE-3) and
    the hex escapes ``\\X0D\\``/``\\X0A\\`` otherwise; other control characters become
    ``\\Xhh\\``. A CR left raw would end the segment — this is what keeps PHI in its field.
    """
    escaped = "".join(_ESCAPES.get(char, char) for char in text)
    if formatted:
        escaped = _LINE_BREAK.sub(r"\\.br\\", escaped)
    else:
        escaped = escaped.replace("\r", "\\X0D\\").replace("\n", "\\X0A\\")
    return _CONTROL.sub(lambda match: f"\\X{ord(match.group()):02X}\\", escaped)


def _place(value: Part) -> str:
    if value is None:
        return ""
    if isinstance(value, Er7):
        return str(value)
    return escape(value)


def _joined(separator: str, parts: Sequence[str]) -> str:
    items = list(parts)
    while items and not items[-1]:
        items.pop()
    return separator.join(items)


def subcomposite(*subcomponents: Part) -> Er7:
    """Subcomponents joined by ``&`` (``&X&ISO`` for an HD inside a CX), trailing empties
    trimmed."""
    return Er7(_joined("&", [_place(part) for part in subcomponents]))


def composite(*components: Part) -> Er7:
    """Components joined by ``^``, trailing empties trimmed: ``composite("a", None, "c")``
    is ``a^^c``. A component with subcomponents is a :func:`subcomposite`."""
    return Er7(_joined("^", [_place(part) for part in components]))


def _field(value: FieldValue) -> str:
    if value is None or isinstance(value, str):
        return _place(value)
    return _joined("~", [_place(repetition) for repetition in value])


def segment(name: str, *fields: FieldValue) -> Er7:
    """``NAME|field1|field2…``; a list or tuple is the field's repetitions."""
    _check_name(name)
    if name == "MSH":
        raise ValueError("MSH is built with header_segment()")
    return Er7(_joined(FIELD_SEPARATOR, [name, *(_field(value) for value in fields)]))


def numbered_segment(name: str, fields: Mapping[int, FieldValue]) -> Er7:
    """A segment from its fields by number (``{1: "1", 25: "F"}``); unnumbered ones are
    empty."""
    if any(number < 1 for number in fields):
        raise ValueError("Field numbers start at 1")
    last = max(fields, default=0)
    return segment(name, *(fields.get(number) for number in range(1, last + 1)))


def header_segment(fields: Mapping[int, FieldValue]) -> Er7:
    """MSH from its fields by number as the standard numbers them (3 = sending application,
    9 = message type…); MSH-1 and MSH-2 are always ``|`` and ``^~\\&``."""
    if any(number < 3 for number in fields):
        raise ValueError("MSH-1 and MSH-2 are fixed; give fields from MSH-3 on")
    last = max(fields, default=2)
    rest = [_field(fields.get(number)) for number in range(3, last + 1)]
    return Er7(_joined(FIELD_SEPARATOR, ["MSH", ENCODING_CHARACTERS, *rest]))


def message(segments: Sequence[str]) -> str:
    """Segments as one message, each ended by CR (the ER7 segment terminator)."""
    return "".join(f"{text}{SEGMENT_TERMINATOR}" for text in segments)


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", name):
        raise ValueError(f"{name!r} is not a segment name")


# --------------------------------------------------------------------------- dates


def to_dtm(value: str) -> str:
    """A FHIR ``date``/``dateTime``/``instant`` as a v2 DTM, keeping its precision and zone.

    ``2025-03-01T10:11:12.345+01:00`` → ``20250301101112.345+0100``; ``Z`` → ``+0000``; no
    zone → none; ``2025-03`` → ``202503``. Fractions of a second are cut to the four digits
    DTM allows. Raises ``ValueError`` when ``value`` is not a FHIR date or dateTime.
    """
    match = _FHIR_MOMENT.match(value.strip())
    if match is None:
        raise ValueError("Not a FHIR date or dateTime")
    parts = [match[name] or "" for name in ("year", "month", "day", "hour", "minute", "second")]
    text = "".join(parts)
    if match["fraction"]:
        text += "." + match["fraction"][:4]
    zone = match["zone"]
    if zone:
        text += "+0000" if zone == "Z" else zone.replace(":", "")
    _check_calendar(match)
    return text


def to_dt(value: str) -> str:
    """A FHIR ``date`` (or the date of a ``dateTime``, as written) as a v2 DT:
    ``2025-03-01`` → ``20250301``, ``2025`` → ``2025``. Raises ``ValueError`` when it is not
    one."""
    match = _FHIR_MOMENT.match(value.strip())
    if match is None:
        raise ValueError("Not a FHIR date")
    _check_calendar(match)
    return "".join(match[name] or "" for name in ("year", "month", "day"))


def datetime_to_dtm(moment: dt.datetime) -> str:
    """A Python datetime as DTM to the second (``20250301101112+0100``; no zone if naive)."""
    text = moment.strftime("%Y%m%d%H%M%S")
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        text += moment.strftime("%z")[:5]
    return text


def _check_calendar(match: re.Match[str]) -> None:
    try:
        dt.date(int(match["year"]), int(match["month"] or 1), int(match["day"] or 1))
        if match["hour"] is not None:
            dt.time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0))
    except ValueError:
        raise ValueError("Not a calendar date or time") from None


# --------------------------------------------------------------------------- control ids


def control_id() -> str:
    """A new message control id (MSH-10): 20 characters of ``0-9A-Z``, the first 9 the
    current time in milliseconds (so ids sort by creation), the last 11 random (57 bits)."""
    millis = time.time_ns() // 1_000_000
    stamp = ""
    while millis:
        millis, digit = divmod(millis, 36)
        stamp = _ID_ALPHABET[digit] + stamp
    random_part = "".join(secrets.choice(_ID_ALPHABET) for _ in range(11))
    return stamp.rjust(9, "0") + random_part
