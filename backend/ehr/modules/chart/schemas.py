"""The chart's views as the business API returns them (our shapes, not raw FHIR)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ehr.modules.patients import PatientSummary

__all__ = [
    "ChartEntry",
    "ChartSummary",
    "SectionName",
    "SummarySection",
    "TimelineItem",
    "TimelineKind",
    "TimelinePage",
]

SectionName = Literal[
    "problems",
    "allergies",
    "medications",
    "vitals",
    "results",
    "orders",
    "appointments",
    "care_team",
]
TimelineKind = Literal["encounter", "order", "result", "note", "medication"]


class ChartEntry(BaseModel):
    """One item of a summary section: what a clinician reads at a glance."""

    model_config = ConfigDict(extra="forbid")

    resource_type: str
    id: str
    display: str | None = Field(default=None, description="The coded concept's text.")
    code: str | None = Field(default=None, description="`system|code` of the first coding.")
    status: str | None = None
    date: str | None = Field(default=None, description="The clinical date (FHIR date/dateTime).")
    value: str | None = Field(default=None, description="A result's or vital's value and unit.")
    interpretation: str | None = Field(default=None, description="e.g. H, L, HH, LL, A.")
    abnormal: bool = False


class SummarySection(BaseModel):
    """A section of the summary: its entries, or why it could not be read."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "unavailable"]
    entries: list[ChartEntry] = Field(default_factory=list)
    complete: bool = Field(default=True, description="False when more entries exist than shown.")
    withheld: int = Field(
        default=0, description="Restricted (R/V) entries left out: break-glass shows them."
    )
    error: str | None = Field(default=None, description="The problem code when unavailable.")
    detail: str | None = None


class ChartSummary(BaseModel):
    """The patient at a glance; every section is present, each says whether it could be read."""

    model_config = ConfigDict(extra="forbid")

    patient: PatientSummary
    sections: dict[SectionName, SummarySection]


class TimelineItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TimelineKind
    resource_type: str
    id: str
    date: str = Field(description="The clinical date the timeline is ordered by (UTC).")
    display: str | None = None
    status: str | None = None


class TimelinePage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TimelineItem]
    next: str | None = Field(default=None, description="Cursor of the next (older) page.")
    unavailable: dict[TimelineKind, str] = Field(
        default_factory=dict, description="Kinds that could not be read, with the problem code."
    )
    withheld: int = 0
