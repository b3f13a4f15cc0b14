"""v2 DTM/TS/DT values as FHIR ``date``, ``dateTime`` and ``instant``.

v2 ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` keeps its precision in FHIR, with two
rules FHIR imposes:

* a FHIR dateTime with a time has seconds: ``HH`` and ``HHMM`` are completed with zeros
  (``2025010112`` -> ``2025-01-01T12:00:00…``);
* a FHIR dateTime with a time has a zone. A v2 time without one is in the sender's local
  time; we take the zone of MSH-7 when it has one, and otherwise treat the time as UTC (``Z``).
  That is a guess for senders that never send zones — they should be configured to send them.

A TS's second component (degree of precision, withdrawn in v2.6) is ignored: the value's own
length is its precision. An impossible value (``20251345``) raises :class:`ConversionError` with
the field's location; callers decide whether a field is strict (birth dates, observation and
result times…) or is dropped when malformed.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Final

from ehr.modules.hl7v2.to_fhir.conversion import ConversionError

__all__ = ["UTC", "V2DateTime", "parse_dtm", "zone_of"]

UTC: Final = "Z"

_DTM: Final = re.compile(
    r"^(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})(?:(?P<hour>\d{2})(?:(?P<minute>\d{2})"
    r"(?:(?P<second>\d{2})(?:\.(?P<fraction>\d{1,4}))?)?)?)?)?)?(?P<zone>[+-]\d{4})?$"
)


@dataclass(frozen=True, slots=True)
class V2DateTime:
    """A validated v2 date/time, components as text of their v2 width (None when absent)."""

    year: str
    month: str | None
    day: str | None
    hour: str | None
    minute: str | None
    second: str | None
    fraction: str | None
    zone: str | None  # "+hh:mm" / "-hh:mm", or None when the value has none

    @property
    def has_time(self) -> bool:
        return self.hour is not None

    def date(self) -> str:
        """FHIR ``date`` (the time, if any, is dropped)."""
        parts = [self.year, self.month, self.day]
        return "-".join(part for part in parts if part is not None)

    def date_time(self, default_zone: str) -> str:
        """FHIR ``dateTime`` of the same precision (seconds completed, zone as documented)."""
        if self.hour is None:
            return self.date()
        seconds = self.second or "00"
        if self.fraction:
            seconds = f"{seconds}.{self.fraction}"
        return (
            f"{self.date()}T{self.hour}:{self.minute or '00'}:{seconds}{self.zone or default_zone}"
        )

    def instant(self, default_zone: str) -> str | None:
        """FHIR ``instant``, or None when the value is not precise to the minute."""
        if self.minute is None:
            return None
        return self.date_time(default_zone)


def zone_of(value: str) -> str | None:
    """The zone of a v2 timestamp as FHIR writes it (``-0500`` -> ``-05:00``, ``+0000`` ->
    ``Z``), or None when it has none or is not a valid timestamp."""
    try:
        return parse_dtm(value, "MSH-7").zone
    except ConversionError:
        return None


def parse_dtm(value: str, location: str) -> V2DateTime:
    """Parse and validate a v2 DTM (TS.1, DT). Raises :class:`ConversionError` naming
    ``location`` when the value is not a real date/time; the value itself is never quoted."""
    match = _DTM.match(value.strip())
    if match is None:
        raise ConversionError("not a valid HL7 v2 date/time", location)
    parts = match.groupdict()
    year = int(parts["year"])
    if parts["month"] is not None and not 1 <= int(parts["month"]) <= 12:
        raise ConversionError("month out of range", location)
    if parts["day"] is not None:
        last_day = calendar.monthrange(year, int(parts["month"] or 1))[1]
        if not 1 <= int(parts["day"]) <= last_day:
            raise ConversionError("day out of range", location)
    if parts["hour"] is not None and int(parts["hour"]) > 23:
        raise ConversionError("hour out of range", location)
    if parts["minute"] is not None and int(parts["minute"]) > 59:
        raise ConversionError("minute out of range", location)
    if parts["second"] is not None and int(parts["second"]) > 59:
        raise ConversionError("second out of range", location)
    zone: str | None = None
    if parts["zone"] is not None:
        sign, hours, minutes = parts["zone"][0], parts["zone"][1:3], parts["zone"][3:5]
        if int(hours) > 14 or int(minutes) > 59:
            raise ConversionError("time zone out of range", location)
        zone = f"{sign}{hours}:{minutes}"
        if zone in {"+00:00", "-00:00"}:
            zone = UTC
    return V2DateTime(
        year=parts["year"],
        month=parts["month"],
        day=parts["day"],
        hour=parts["hour"],
        minute=parts["minute"],
        second=parts["second"],
        fraction=parts["fraction"],
        zone=zone,
    )
