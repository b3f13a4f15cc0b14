"""The note list's keyset cursor: the (date, id) of the last note shown, sealed with an HMAC
to the tenant, the patient and the list's filters (``clinical_record.ListCursors``).

The list is ordered (date desc, id desc), ``date`` the note's ``date`` as a UTC instant. The
next page is every note strictly after the cursor in that order, so notes written while a
client pages never shift or repeat a page (a new note shows on a fresh first page). HAPI is
asked for ``date le <cursor date>`` sorted ``-date``; the ties of the boundary date are read
whole before a page is cut, so a page never ends inside a group of equal dates it has not
fully seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from ehr.core.errors import RequestValidationFailed
from ehr.modules.clinical_record import InvalidListCursor, ListCursors

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "InvalidNoteCursorError",
    "NoteCursor",
    "list_scope",
    "open_cursor",
    "query_instant",
    "seal_cursor",
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


def list_scope(status: str | None, released_only: bool) -> str:
    """What a note-list cursor is sealed to besides tenant and patient: the list's filters."""
    return f"notes|{status or ''}|{int(released_only)}"


def seal_cursor(cursors: ListCursors, scope: str, patient_id: str, key: NoteCursor) -> str:
    """The cursor of the note at ``key`` in this patient's list (HMAC-sealed, see
    :class:`ehr.modules.clinical_record.ListCursors`)."""
    return cursors.seal(scope, patient_id, key)


def open_cursor(cursors: ListCursors, scope: str, patient_id: str, cursor: str) -> NoteCursor:
    """The (date, id) a cursor names; 422 ``invalid_note_cursor`` unless this API sealed it for
    this tenant, patient and filters."""
    try:
        position = cursors.open(scope, patient_id, cursor)
    except InvalidListCursor:
        raise InvalidNoteCursorError("The note list cursor is not valid") from None
    match position:
        case (str() as date, str() as note_id) if _instant(date) == date:
            return date, note_id
    raise InvalidNoteCursorError("The note list cursor is not valid")


def query_instant(instant: str) -> str:
    """The cursor's instant as a HAPI ``date`` search value, rounded UP to the second (``le``
    must include the cursor's own second; the exact keyset filter is applied afterwards)."""
    parsed = dt.datetime.fromisoformat(instant)
    if parsed.microsecond:
        parsed = parsed.replace(microsecond=0) + dt.timedelta(seconds=1)
    return parsed.isoformat(timespec="seconds").replace("+00:00", "Z")
