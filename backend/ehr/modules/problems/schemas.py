"""Request and response documents of the problems API (our own shapes, not the FHIR Condition)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoDate
from ehr.modules.clinical_record import Recorder

__all__ = [
    "ACTIVE_CLINICAL_STATUSES",
    "ClinicalStatus",
    "CodeIn",
    "CodeOut",
    "Problem",
    "ProblemCreate",
    "ProblemId",
    "ProblemList",
    "ProblemUpdate",
    "Recorder",
    "VerificationStatus",
    "WritableVerificationStatus",
]

ClinicalStatus = Literal["active", "recurrence", "relapse", "inactive", "remission", "resolved"]
VerificationStatus = Literal[
    "unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"
]
# entered-in-error is set by its own route (POST .../entered-in-error), never by a create/update.
WritableVerificationStatus = Literal[
    "unconfirmed", "provisional", "differential", "confirmed", "refuted"
]
# The clinical statuses of a problem that is going on (an abatement date contradicts them).
ACTIVE_CLINICAL_STATUSES: Final = frozenset({"active", "recurrence", "relapse"})

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)]
_Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]

ProblemId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        max_length=64,
        description="The problem's (Condition's) FHIR id.",
    ),
]


class CodeIn(BaseModel):
    """The problem's code: ICD-10-CM or SNOMED CT (other systems: 422 unknown_code_system)."""

    model_config = ConfigDict(extra="forbid")

    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    display: _Text | None = None


class CodeOut(BaseModel):
    """A coding as stored."""

    system: str | None = None
    code: str
    display: str | None = None


class _ProblemFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: _FhirId | None = Field(
        default=None,
        description="Optional; if given it must be the path's patient (else 422 patient_mismatch).",
    )
    code: CodeIn = Field(
        examples=[{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]
    )
    text: _Text | None = Field(default=None, description="The problem as the clinician says it.")
    clinical_status: ClinicalStatus = "active"
    verification_status: WritableVerificationStatus = "confirmed"
    onset: IsoDate | None = None
    abatement: IsoDate | None = Field(
        default=None,
        description="Only for inactive/remission/resolved problems; not before onset.",
    )
    note: _Note | None = None


class ProblemCreate(_ProblemFields):
    """A new problem-list entry."""


class ProblemUpdate(_ProblemFields):
    """The problem's new state (replaces code, statuses, dates and note). Needs `If-Match`."""


class Problem(BaseModel):
    """What the business API shows of a problem-list Condition."""

    id: str
    version: str | None = Field(description="meta.versionId: send it back in If-Match.")
    patient_id: str
    code: CodeOut | None
    text: str | None = None
    clinical_status: ClinicalStatus | None = Field(
        description="Absent when the entry is entered-in-error."
    )
    verification_status: VerificationStatus | None
    onset: str | None = None
    abatement: str | None = None
    recorded_date: str | None = None
    recorder: Recorder | None = None
    note: str | None = None


class ProblemList(BaseModel):
    """A patient's problems: active (and recurrence/relapse) first, then the others."""

    items: list[Problem]
    complete: bool = Field(description="False when the list was cut at the read bound.")
    next: str | None = Field(
        default=None,
        description="Cursor of the next page (send it as `cursor` with the same filters); "
        "absent on the last page.",
    )
