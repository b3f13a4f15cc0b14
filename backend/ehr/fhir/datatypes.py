"""Typed read accessors over FHIR R4 JSON datatypes (Coding, CodeableConcept, Identifier,
Reference, Period, date/dateTime, status codes).

Resources stay the plain JSON dicts HAPI returns (HAPI validates them; see
docs/adr/0017-typed-fhir-layer.md for why these are light accessors and not resource models).
Business code reads the datatypes it decides on through these functions instead of walking the
dicts by hand. Every accessor is tolerant: it takes ``object`` (whatever sits at that place in
the JSON), skips junk (wrong types, blank codes) and never raises::

    for coding in codings(resource.get("code")):        # Coding(system, code, display)
        ...
    status_code(condition.get("clinicalStatus"))        # "active" | None
    reference_parts({"reference": "Patient/123"})       # ReferenceParts("Patient", "123")
    period = period_of(statement.get("effectivePeriod"))
    if period is not None and period.has_ended(now): ...
    parse_fhir_date("2025-03")                          # FhirDate(first=03-01, last=03-31)
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

__all__ = [
    "Coding",
    "FhirDate",
    "Identifier",
    "Period",
    "ReferenceParts",
    "codings",
    "concept_text",
    "identifiers",
    "parse_fhir_date",
    "period_of",
    "reference_of",
    "reference_parts",
    "status_code",
]

# FHIR date / dateTime: YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm[:ss[.fff]][zone].
_FHIR_DATETIME: Final = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})(?P<time>T.+)?)?)?$"
)
_RESOURCE_TYPE: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
_RESOURCE_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")


# --------------------------------------------------------------------------- Coding


@dataclass(frozen=True, slots=True)
class Coding:
    """One ``Coding``: ``code`` is stripped and never blank; ``system``/``display`` as given."""

    system: str | None
    code: str
    display: str | None = None


def codings(concept: object, *, limit: int | None = None) -> list[Coding]:
    """The codings of a ``CodeableConcept`` that have a code (at most ``limit`` of them).

    A coding without a non-blank string ``code`` is skipped; a non-string ``system`` or
    ``display`` reads as ``None``.
    """
    if not isinstance(concept, Mapping):
        return []
    raw = concept.get("coding")
    found: list[Coding] = []
    for coding in raw if isinstance(raw, list) else ():
        if not isinstance(coding, Mapping):
            continue
        code = coding.get("code")
        if not isinstance(code, str) or not code.strip():
            continue
        system = coding.get("system")
        display = coding.get("display")
        found.append(
            Coding(
                system if isinstance(system, str) else None,
                code.strip(),
                display if isinstance(display, str) else None,
            )
        )
        if limit is not None and len(found) >= limit:
            break
    return found


def concept_text(concept: object) -> str | None:
    """A ``CodeableConcept``'s ``text``, stripped (``None`` when absent or blank)."""
    if isinstance(concept, Mapping):
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def status_code(concept: object) -> str | None:
    """The code of a status ``CodeableConcept`` (``clinicalStatus``, ``verificationStatus``):
    its first coding's code, or ``None``."""
    first = codings(concept, limit=1)
    return first[0].code if first else None


# --------------------------------------------------------------------------- Identifier


@dataclass(frozen=True, slots=True)
class Identifier:
    """One ``Identifier``: ``value`` is a string; ``system`` as given (``None`` if absent)."""

    system: str | None
    value: str


def identifiers(resource: object) -> list[Identifier]:
    """A resource's ``identifier`` list (entries without a string ``value`` skipped)."""
    if not isinstance(resource, Mapping):
        return []
    raw = resource.get("identifier")
    found: list[Identifier] = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, Mapping):
            continue
        value = item.get("value")
        if not isinstance(value, str):
            continue
        system = item.get("system")
        found.append(Identifier(system if isinstance(system, str) else None, value))
    return found


# --------------------------------------------------------------------------- Reference


class ReferenceParts(NamedTuple):
    """The resource a literal reference points at."""

    resource_type: str
    resource_id: str


def reference_parts(reference: object) -> ReferenceParts | None:
    """``Type/id`` of a literal reference (a string, or a ``Reference`` with ``reference``).

    Relative (``Patient/1``), absolute (``http://h/fhir/Patient/1``) and versioned
    (``Patient/1/_history/2``) forms are read; contained (``#id``), conditional
    (``Patient?identifier=...``) and malformed references give ``None``.
    """
    if isinstance(reference, Mapping):
        reference = reference.get("reference")
    if not isinstance(reference, str) or reference.startswith("#"):
        return None
    path = reference.split("/_history/", 1)[0]
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) < 2:
        return None
    resource_type, resource_id = parts[-2], parts[-1]
    if not _RESOURCE_TYPE.fullmatch(resource_type) or not _RESOURCE_ID.fullmatch(resource_id):
        return None
    return ReferenceParts(resource_type, resource_id)


def reference_of(resource: Mapping[str, Any]) -> str:
    """The relative reference ``{resourceType}/{id}`` of a resource (as its fields read)."""
    return f"{resource.get('resourceType')}/{resource.get('id')}"


# --------------------------------------------------------------------------- dates and periods


@dataclass(frozen=True, slots=True)
class FhirDate:
    """A FHIR ``date``/``dateTime``: the calendar days it covers and, with a time, the moment.

    A partial date covers a range (``2025`` → 2025-01-01 .. 2025-12-31, ``2025-03`` → the days
    of March); a full date one day; a dateTime one day (as written, in its own offset) and its
    ``moment`` (timezone-aware; a dateTime without offset is read as UTC).
    """

    first: dt.date
    last: dt.date
    moment: dt.datetime | None = None

    @property
    def start(self) -> dt.datetime:
        """The earliest instant it can mean (aware): the moment, or midnight UTC of ``first``."""
        if self.moment is not None:
            return self.moment
        return dt.datetime.combine(self.first, dt.time(), dt.UTC)

    def has_passed(self, now: dt.datetime) -> bool:
        """Whether it lies wholly before ``now`` (a date: its last day is before today, UTC)."""
        if self.moment is not None:
            return self.moment < now
        return self.last < now.astimezone(dt.UTC).date()


def parse_fhir_date(value: object) -> FhirDate | None:
    """A FHIR ``date``/``dateTime`` string read as a :class:`FhirDate` (``None`` if it is not)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _FHIR_DATETIME.match(text)
    if match is None:
        return None
    try:
        year = int(match["year"])
        if match["time"]:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return FhirDate(moment.date(), moment.date(), moment)
        if match["day"]:
            day = dt.date(year, int(match["month"]), int(match["day"]))
            return FhirDate(day, day)
        if match["month"]:
            month = int(match["month"])
            last = calendar.monthrange(year, month)[1]
            return FhirDate(dt.date(year, month, 1), dt.date(year, month, last))
        return FhirDate(dt.date(year, 1, 1), dt.date(year, 12, 31))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Period:
    """A FHIR ``Period``; a bound that is absent or not a FHIR date reads as ``None``."""

    start: FhirDate | None
    end: FhirDate | None

    def has_ended(self, now: dt.datetime) -> bool:
        """Whether ``end`` lies in the past (no readable end: ``False``)."""
        return self.end is not None and self.end.has_passed(now)


def period_of(value: object) -> Period | None:
    """A ``Period`` object read (``None`` when ``value`` is not an object)."""
    if not isinstance(value, Mapping):
        return None
    return Period(parse_fhir_date(value.get("start")), parse_fhir_date(value.get("end")))


# --- versions (meta.versionId, ETags, If-Match) ---------------------------------------------------


def version_id(resource: Mapping[str, Any]) -> str | None:
    """The stored resource's ``meta.versionId`` (None when it has none)."""
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def etag_of(resource: Mapping[str, Any]) -> str | None:
    """The weak ETag of the stored resource's version (``W/"3"``), for a response header."""
    version = version_id(resource)
    return f'W/"{version}"' if version is not None else None


def bare_version(tag: str) -> str:
    """The version id an ``If-Match`` value names: ``3`` from ``3``, ``"3"`` or ``W/"3"``."""
    return tag.strip().removeprefix("W/").strip('"')
