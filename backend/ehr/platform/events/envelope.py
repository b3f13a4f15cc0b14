"""The domain event envelope (ADR 0023): what an event says, and the guarantee that it carries
no PHI — ids, references and codes only.

``data`` is deliberately narrow: its values are FHIR references (``Observation/123``), codes
(``critical``, ``http://loinc.org|2823-3``), integers, booleans or lists of those. No free
text (a value with a space is refused), no floats (a measured value is clinical data): a
consumer that needs the facts reads them from HAPI by the reference, under its own access rules.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ehr.core.request_context import request_id_var

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "Event",
    "EventDataError",
    "Reference",
    "new_event",
]

EVENT_SCHEMA_VERSION: Final = 1

# `order.signed`, `result.critical`, `fhir.changed`: two or more lower-case dotted words.
_TYPE: Final = r"^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){1,3}$"
# A tenant slug (ehr_app.tenants.slug), or HAPI's DEFAULT partition of a single-tenant install.
_TENANT: Final = r"^(DEFAULT|[a-z0-9_][a-z0-9-]{0,62})$"
# A relative FHIR reference: `Patient/123` (type, id: FHIR id characters, at most 64).
_REFERENCE: Final = r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$"
_VERSION: Final = r"^[A-Za-z0-9\-.]{1,64}$"
_REQUEST_ID: Final = r"^[A-Za-z0-9._:\-]{1,128}$"
_REQUEST_ID_RE: Final = re.compile(_REQUEST_ID)
# A code or reference in `data`: no whitespace, nothing looking like prose; system|code allowed.
_CODE: Final = re.compile(r"[A-Za-z0-9._:\-/|#]{1,128}")
_DATA_KEY: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_DATA_ITEMS: Final = 32
_MAX_LIST: Final = 50

Reference = Annotated[str, Field(pattern=_REFERENCE)]


class EventDataError(ValueError):
    """``data`` holds something other than ids, references, codes, integers or booleans."""


def _check_scalar(key: str, value: Any) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if not _CODE.fullmatch(value):
            raise EventDataError(
                f"data.{key}: only references and codes (no spaces, at most 128 characters)"
            )
        return
    raise EventDataError(
        f"data.{key}: {type(value).__name__} is not allowed (references, codes, int, bool)"
    )


def _check_data(data: dict[str, Any]) -> dict[str, Any]:
    if len(data) > _MAX_DATA_ITEMS:
        raise EventDataError(f"data: at most {_MAX_DATA_ITEMS} entries")
    for key, value in data.items():
        if not _DATA_KEY.fullmatch(key):
            raise EventDataError(f"data: key {key[:40]!r} is not a lower-case identifier")
        if isinstance(value, list):
            if len(value) > _MAX_LIST:
                raise EventDataError(f"data.{key}: at most {_MAX_LIST} items")
            for item in value:
                _check_scalar(key, item)
        else:
            _check_scalar(key, value)
    return data


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class Event(BaseModel):
    """One domain event: something that happened to a tenant's resource, by reference only.

    ``id`` identifies the event across redeliveries (handlers' receipts key on it);
    ``subject`` is the patient it concerns (``Patient/123``), when there is one; ``resource``
    and ``resource_version`` the resource that changed (a FHIR version id); ``request_id`` the
    request that caused it (log correlation). ``schema_version`` lets a consumer refuse an
    envelope newer than it understands.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = Field(pattern=_TYPE)
    tenant: str = Field(pattern=_TENANT)
    subject: Reference | None = None
    resource: Reference | None = None
    resource_version: str | None = Field(default=None, pattern=_VERSION)
    occurred_at: Annotated[AwareDatetime, AfterValidator(_utc)] = Field(
        default_factory=lambda: datetime.now(UTC)
    )
    request_id: str | None = Field(default=None, pattern=_REQUEST_ID)
    schema_version: int = Field(default=EVENT_SCHEMA_VERSION, ge=1, le=EVENT_SCHEMA_VERSION)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _only_ids_and_codes(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_data(value)

    def to_json(self) -> str:
        """The envelope as the stream and the outbox carry it."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        return cls.model_validate_json(raw)


def new_event(
    type: str,
    *,
    tenant: str,
    subject: str | None = None,
    resource: str | None = None,
    resource_version: str | None = None,
    request_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """An event happening now; the request id defaults to the current request's."""
    if request_id is None:
        current = request_id_var.get()
        # An incoming X-Request-ID the envelope cannot carry is left out, not refused.
        request_id = current if current and _REQUEST_ID_RE.fullmatch(current) else None
    return Event(
        type=type,
        tenant=tenant,
        subject=subject,
        resource=resource,
        resource_version=resource_version,
        request_id=request_id,
        data=data or {},
    )
