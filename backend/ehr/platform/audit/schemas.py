"""Audit search: response documents and the validated filters."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from ehr.core.errors import RequestValidationFailed
from ehr.core.intake import IsoDateTime

__all__ = [
    "ACTION_PATTERN",
    "ACTOR_ID_PATTERN",
    "CURSOR_PATTERN",
    "PATIENT_ID_PATTERN",
    "AuditFilters",
    "AuditPage",
    "AuditRecordOut",
    "ExportFormat",
    "decode_cursor",
    "encode_cursor",
]

# Query parameter patterns (ids and codes only).
ACTOR_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,64}$"
PATIENT_ID_PATTERN: Final = r"^[A-Za-z0-9.-]{1,64}$"
ACTION_PATTERN: Final = r"^[a-z_]{1,32}(:[a-z_$-]{1,31})?$"
CURSOR_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_CURSOR_PREFIX: Final = "a2:"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    FHIR = "fhir"


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What to search for, always inside the caller's tenant."""

    tenant: str
    user: str | None = None
    patient: str | None = None
    action: str | None = None
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None

    def echo(self) -> dict[str, Any]:
        """The filters as recorded on the audit trail (ids and codes only)."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in (
                ("user", self.user),
                ("patient", self.patient),
                ("action", self.action),
                ("since", self.since),
                ("until", self.until),
            )
            if value is not None
        }


def encode_cursor(position: tuple[datetime, int]) -> str:
    """An opaque cursor continuing after ``(occurred_at, id)`` (keyset pagination, newest
    first)."""
    occurred_at, record_id = position
    micros = (occurred_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_CURSOR_PREFIX}{micros}:{record_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The ``(occurred_at, id)`` a cursor continues after; 422 if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if raw.startswith(_CURSOR_PREFIX):
        micros, _, record_id = raw[len(_CURSOR_PREFIX) :].partition(":")
        if micros.isdigit() and record_id.isdigit() and 0 < int(record_id) < 2**63:
            try:
                occurred_at = _EPOCH + timedelta(microseconds=int(micros))
            except OverflowError:
                occurred_at = None
            if occurred_at is not None:
                return occurred_at, int(record_id)
    raise RequestValidationFailed("The cursor is not valid; use the one from a previous page.")


class AuditRecordOut(BaseModel):
    """One audit record as shown to holders of ``audit:view``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant: str
    shard: int
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_roles: list[str]
    action: str
    resource_type: str | None
    resource_id: str | None
    patient_id: str | None
    outcome: str
    http_status: int | None
    source_ip: str | None
    user_agent: str | None
    request_id: str | None
    purpose_of_use: str | None
    break_glass: bool
    break_glass_reason: str | None
    details: dict[str, Any] | None
    prev_hash: str
    record_hash: str


class AuditPage(BaseModel):
    """One page of audit records, newest first."""

    items: list[AuditRecordOut]
    limit: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
