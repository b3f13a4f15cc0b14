"""Request and response documents of the encounters API (our own shapes, not the FHIR resource)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoAwareDateTime

__all__ = [
    "ACT_CODE_SYSTEM",
    "CodingIn",
    "CodingOut",
    "EncounterClass",
    "EncounterDischarge",
    "EncounterId",
    "EncounterList",
    "EncounterStart",
    "EncounterStatus",
    "EncounterStatusChange",
    "EncounterSummary",
    "StatusHistoryItem",
]

ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

# The FHIR R4 Encounter.status value set.
EncounterStatus = Literal[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
]
# The v3 ActCode encounter classes this API starts: ambulatory, inpatient, emergency.
EncounterClass = Literal["AMB", "IMP", "EMER"]

EncounterId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64, description="The Encounter's id."),
]

_Uri = Annotated[str, StringConstraints(pattern=r"^(urn:\S+|https?://\S+)$", max_length=255)]
_Code = Annotated[str, StringConstraints(pattern=r"^[^\s]+( [^\s]+)*$", max_length=64)]
_Display = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CodingIn(BaseModel):
    """A code from a code system (an encounter type, a discharge disposition)."""

    model_config = ConfigDict(extra="forbid")

    system: _Uri
    code: _Code
    display: _Display | None = None


class CodingOut(BaseModel):
    """A coding as stored."""

    system: str | None = None
    code: str | None = None
    display: str | None = None


class EncounterStart(BaseModel):
    """A new encounter: its class, optional type, and when it started (now if omitted)."""

    model_config = ConfigDict(extra="forbid")

    class_code: EncounterClass = Field(description="v3 ActCode: AMB, IMP or EMER.")
    type: list[CodingIn] = Field(default_factory=list, max_length=5)
    status: Literal["in-progress", "arrived", "planned"] = "in-progress"
    start: IsoAwareDateTime | None = Field(
        default=None, description="When it started (planned: when it is planned); now if omitted."
    )
    reason: _Display | None = Field(default=None, description="Reason for the visit (free text).")


class EncounterDischarge(BaseModel):
    """Ending an encounter: when (now if omitted) and, optionally, the discharge disposition."""

    model_config = ConfigDict(extra="forbid")

    end: IsoAwareDateTime | None = None
    discharge_disposition: CodingIn | None = None


class EncounterStatusChange(BaseModel):
    """Moving an encounter to another status along the FHIR R4 workflow."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["arrived", "triaged", "in-progress", "onleave"]


class StatusHistoryItem(BaseModel):
    """A status the encounter had, and when."""

    status: str
    start: str | None = None
    end: str | None = None


class EncounterSummary(BaseModel):
    """What the business API shows of an Encounter."""

    id: str
    version: str | None = Field(description="meta.versionId; send it back in If-Match.")
    patient_id: str
    status: str
    class_code: str | None = None
    type: list[CodingOut] = Field(default_factory=list)
    reason: str | None = None
    start: str | None = None
    end: str | None = None
    discharge_disposition: CodingOut | None = None
    status_history: list[StatusHistoryItem] = Field(default_factory=list)


class EncounterList(BaseModel):
    """A patient's encounters, newest first (one page)."""

    items: list[EncounterSummary]
    complete: bool = Field(
        default=True, description="False when the list was cut at the read bound (1,000)."
    )
    next: str | None = Field(
        default=None,
        description="Cursor of the next page (send it as `cursor` with the same filters); "
        "absent on the last page.",
    )
    withheld: int = Field(
        default=0, description="Restricted (R/V) encounters left out: they need break-glass."
    )


def utc_now() -> dt.datetime:
    """Now, in UTC (one place, so tests can reason about it)."""
    return dt.datetime.now(dt.UTC)
