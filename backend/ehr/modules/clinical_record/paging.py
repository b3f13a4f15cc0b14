"""Paging a patient's list (problems, allergies, encounters) by a keyset cursor.

A list is read (bounded) and put in its order; a page is the first ``limit`` entries that sort
strictly after the cursor's position. The cursor is the last shown entry's sort key, sealed
(HMAC-SHA256) to the tenant, the patient and the list with its filters: opaque, unforgeable, and
useless in another tenant, for another patient or with other filters (422
``invalid_list_cursor``). Being a position, not an offset, it is stable: an entry recorded while
a client pages shows on a fresh first page and never shifts or repeats the pages after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, Query

from ehr.core.dependencies import SettingsDep
from ehr.core.errors import RequestValidationFailed
from ehr.fhir import parse_fhir_date
from ehr.platform.auth.dependencies import CurrentPrincipal

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "CursorParam",
    "InvalidListCursor",
    "LimitParam",
    "ListCursors",
    "ListCursorsDep",
    "SortKey",
    "newest_first",
    "newest_written_first",
    "page_of",
]

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 200
_MAC_BYTES: Final = 16

SortKey = tuple[int | str, ...]
T = TypeVar("T")

LimitParam = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description="Entries per page (at most 200).")
]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=1024,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="From a page's `next`, with the same filters.",
    ),
]


class InvalidListCursor(RequestValidationFailed):
    """A cursor not issued for this list (tenant, patient, filters), or not a cursor at all."""

    code = "invalid_list_cursor"
    title = "Invalid list cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ListCursors:
    """Seals and opens the list cursors of one tenant."""

    def __init__(self, key: bytes, tenant: str) -> None:
        self._key = key
        self._tenant = tenant

    def _mac(self, scope: str, patient_id: str, raw: bytes) -> bytes:
        message = f"list.cursor:{self._tenant}/Patient/{patient_id}:{scope}:".encode() + raw
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def seal(self, scope: str, patient_id: str, position: SortKey) -> str:
        """The cursor of ``position`` in the list ``scope`` (its name and filters)."""
        raw = json.dumps(list(position), separators=(",", ":")).encode()
        return f"{_b64(raw)}.{_b64(self._mac(scope, patient_id, raw))}"

    def open(self, scope: str, patient_id: str, cursor: str) -> SortKey:
        """The position a cursor names (:class:`InvalidListCursor` if it is not this list's)."""
        try:
            body, mac = cursor.split(".", 1)
            raw, given = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error):
            raise InvalidListCursor("The cursor is malformed.") from None
        if not hmac.compare_digest(given, self._mac(scope, patient_id, raw)):
            raise InvalidListCursor("The cursor was not issued for this list and its filters.")
        position = json.loads(raw)
        return tuple(position)

    def page(
        self,
        scope: str,
        patient_id: str,
        items: Sequence[T],
        order: Callable[[T], SortKey],
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[T], str | None]:
        """The page of ``items`` (in ``order``) after ``cursor``, and the next page's cursor."""
        after = self.open(scope, patient_id, cursor) if cursor is not None else None
        shown, last = page_of(items, order, limit=limit, after=after)
        return shown, (self.seal(scope, patient_id, last) if last is not None else None)


async def get_list_cursors(settings: SettingsDep, principal: CurrentPrincipal) -> ListCursors:
    return ListCursors(settings.security.secret_key.get_secret_value().encode(), principal.tenant)


ListCursorsDep = Annotated[ListCursors, Depends(get_list_cursors)]


def newest_first(value: object) -> tuple[int, int]:
    """A sort key part that orders FHIR dates newest first, undated ones last."""
    parsed = parse_fhir_date(value if isinstance(value, str) else None)
    if parsed is None:
        return (1, 0)
    start = parsed.start
    return (0, -int(start.timestamp() * 1_000_000))


def newest_written_first(resource: Mapping[str, Any]) -> tuple[int, int]:
    """A sort key part for ties of the clinical date: the newest written (``meta.lastUpdated``,
    millisecond precision) first — so an entry recorded while a client pages, whose clinical
    date often falls in the same second as others, sorts before that client's cursor instead of
    among the pages it has still to read."""
    meta = resource.get("meta")
    return newest_first(meta.get("lastUpdated") if isinstance(meta, Mapping) else None)


def page_of(
    items: Sequence[T], key: Callable[[T], SortKey], *, limit: int, after: SortKey | None
) -> tuple[list[T], SortKey | None]:
    """The first ``limit`` of ``items`` (in ``key`` order) after ``after``, and the position
    of the last one when more follow (None: this is the last page)."""
    ordered = sorted(items, key=key)
    rest = [item for item in ordered if after is None or key(item) > after]
    page = rest[:limit]
    more = len(rest) > limit
    return page, (key(page[-1]) if page and more else None)
