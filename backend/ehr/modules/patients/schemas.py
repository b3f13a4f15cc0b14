"""Request and response documents of the patients API (a small summary, not the FHIR resource)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoDate

__all__ = [
    "FHIR_ID_PATTERN",
    "Gender",
    "IdentifierIn",
    "PatientCreate",
    "PatientId",
    "PatientIdentifier",
    "PatientPage",
    "PatientSummary",
]

# FHIR R4 id datatype.
FHIR_ID_PATTERN: Final = r"^[A-Za-z0-9\-.]{1,64}$"

Gender = Literal["male", "female", "other", "unknown"]

# A URI naming an identifier system (urn:oid:..., urn:ehr:demo:mrn, https://...).
_SystemUri = Annotated[
    str,
    StringConstraints(pattern=r"^(urn:[A-Za-z0-9][A-Za-z0-9.:_-]*|https?://\S+)$", max_length=255),
]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _not_in_future(value: dt.date | None) -> dt.date | None:
    if value is not None and value > dt.datetime.now(dt.UTC).date():
        raise ValueError("birth date is in the future")
    return value


# A patient id in a route path (the FHIR id grammar; routes of several modules take it).
PatientId = Annotated[
    str,
    Path(
        pattern=FHIR_ID_PATTERN,
        max_length=64,
        description="The patient's FHIR id.",
        examples=["123"],
    ),
]


class PatientIdentifier(BaseModel):
    """An identifier of the patient (medical record number, national id, ...)."""

    system: str | None = None
    value: str


class IdentifierIn(BaseModel):
    """The identifier a new patient is created (and de-duplicated) by."""

    model_config = ConfigDict(extra="forbid")

    system: _SystemUri = Field(examples=["urn:ehr:demo:mrn"])
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = (
        Field(examples=["MRN-000123"])
    )


class PatientCreate(BaseModel):
    """A new patient. Posting the same identifier again returns the existing patient."""

    model_config = ConfigDict(extra="forbid")

    identifier: IdentifierIn
    family: _Text
    given: list[_Text] = Field(default_factory=list, max_length=5)
    gender: Gender | None = None
    birth_date: Annotated[IsoDate | None, AfterValidator(_not_in_future)] = None


class PatientSummary(BaseModel):
    """What the business API shows of a Patient."""

    id: str
    name: str | None = Field(description="The patient's name as one display string.")
    gender: Gender | None = None
    birth_date: str | None = Field(
        default=None, description="FHIR date: YYYY, YYYY-MM or YYYY-MM-DD.", examples=["1970-01-31"]
    )
    identifiers: list[PatientIdentifier] = Field(default_factory=list)


class PatientPage(BaseModel):
    """One page of a patient search."""

    items: list[PatientSummary]
    total: int | None = Field(description="Number of matches, when the FHIR server reports it.")
    next: str | None = Field(description="URL of the next page (opaque page token), if any.")
