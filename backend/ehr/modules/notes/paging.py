"""The note list's keyset cursor: ``base64url(JSON [date, id])`` of the last note shown.

The list is ordered (date desc, id desc), ``date`` the note's ``date`` as a UTC instant. The
next page is every note strictly after the cursor in that order, so notes written while a
client pages never shift or repeat a page (a new note shows on a fresh first page). HAPI is
asked for ``date le <cursor date>`` sorted ``-date``; the ties of the boundary date are read
whole before a page is cut, so a page never ends inside a group of equal dates it has not
fully seen.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Final

from ehr.core.errors import RequestValidationFailed

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "InvalidNoteCursorError",
    "NoteCursor",
    "decode_cursor",
    "encode_cursor",
    "query_instant",
    "sort_key",
]

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200

NoteCursor = tuple[str, str]


class InvalidNoteCursorError(RequestValidationFailed):
    """The ``cursor`` is not one this API gave out."""

    code = "invalid_note_cursor"
    title = "The note list cursor is not valid"


def _instant(value: object) -> str:
    """The UTC instant of a FHIR dateTime/instant ('' when missing or unreadable: sorts last)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return ""
    if parsed.tzinfo is None:  # a date or a dateTime without zone: read as UTC
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def sort_key(resource: Mapping[str, Any]) -> NoteCursor:
    """A note's place in the list: (UTC instant of its date, its id); sorted descending."""
    return _instant(resource.get("date")), str(resource.get("id", ""))


def encode_cursor(key: NoteCursor) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> NoteCursor:
    """The (date, id) of a cursor; 422 ``invalid_note_cursor`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        date, note_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidNoteCursorError("The note list cursor is not valid") from None
    if not (isinstance(date, str) and isinstance(note_id, str)) or _instant(date) != date:
        raise InvalidNoteCursorError("The note list cursor is not valid")
    return date, note_id


def query_instant(instant: str) -> str:
    """The cursor's instant as a HAPI ``date`` search value, rounded UP to the second (``le``
    must include the cursor's own second; the exact keyset filter is applied afterwards)."""
    parsed = dt.datetime.fromisoformat(instant)
    if parsed.microsecond:
        parsed = parsed.replace(microsecond=0) + dt.timedelta(seconds=1)
    return parsed.isoformat(timespec="seconds").replace("+00:00", "Z")
