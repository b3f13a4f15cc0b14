"""Request and response documents of the allergies API (our own shapes, not the FHIR
AllergyIntolerance)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoDate
from ehr.modules.clinical_record import Recorder

__all__ = [
    "Allergy",
    "AllergyCategory",
    "AllergyCreate",
    "AllergyId",
    "AllergyList",
    "AllergyUpdate",
    "ClinicalStatus",
    "CodeIn",
    "CodeOut",
    "Criticality",
    "Reaction",
    "ReactionIn",
    "Recorder",
    "Severity",
    "VerificationStatus",
    "WritableVerificationStatus",
]

ClinicalStatus = Literal["active", "inactive", "resolved"]
VerificationStatus = Literal["unconfirmed", "confirmed", "refuted", "entered-in-error"]
# entered-in-error is set by its own route (POST .../entered-in-error), never by a create/update.
WritableVerificationStatus = Literal["unconfirmed", "confirmed", "refuted"]
AllergyType = Literal["allergy", "intolerance"]
AllergyCategory = Literal["food", "medication", "environment", "biologic"]
Criticality = Literal["low", "high", "unable-to-assess"]
Severity = Literal["mild", "moderate", "severe"]

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)]
_Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]

AllergyId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        max_length=64,
        description="The allergy's (AllergyIntolerance's) FHIR id.",
    ),
]


class CodeIn(BaseModel):
    """A coding (substance: RxNorm or SNOMED CT; manifestation: SNOMED CT)."""

    model_config = ConfigDict(extra="forbid")

    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    display: _Text | None = None


class CodeOut(BaseModel):
    """A coding as stored."""

    system: str | None = None
    code: str
    display: str | None = None


class ReactionIn(BaseModel):
    """One reaction: what it looked like (SNOMED CT and/or text) and how bad it was."""

    model_config = ConfigDict(extra="forbid")

    manifestation: CodeIn | None = Field(
        default=None, examples=[{"system": "http://snomed.info/sct", "code": "271807003"}]
    )
    manifestation_text: _Text | None = None
    severity: Severity | None = None


class Reaction(BaseModel):
    """A reaction as stored."""

    manifestation: CodeOut | None = None
    manifestation_text: str | None = None
    severity: Severity | None = None


class _AllergyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: _FhirId | None = Field(
        default=None,
        description="Optional; if given it must be the path's patient (else 422 patient_mismatch).",
    )
    substance: CodeIn | None = Field(
        default=None,
        description="RxNorm or SNOMED CT. Without it (free text only) medication safety cannot "
        "check the allergy.",
        examples=[{"system": "http://snomed.info/sct", "code": "764146007"}],
    )
    substance_text: _Text | None = Field(default=None, examples=["Penicillin"])
    clinical_status: ClinicalStatus = "active"
    verification_status: WritableVerificationStatus = "confirmed"
    type: AllergyType | None = None
    category: list[AllergyCategory] = Field(default_factory=list, max_length=4)
    criticality: Criticality | None = None
    onset: IsoDate | None = None
    reactions: list[ReactionIn] = Field(default_factory=list, max_length=10)
    note: _Note | None = None


class AllergyCreate(_AllergyFields):
    """A new allergy or intolerance."""


class AllergyUpdate(_AllergyFields):
    """The allergy's new state (replaces every field). Needs `If-Match`."""


class Allergy(BaseModel):
    """What the business API shows of an AllergyIntolerance."""

    id: str
    version: str | None = Field(description="meta.versionId: send it back in If-Match.")
    patient_id: str
    substance: CodeOut | None
    substance_text: str | None = None
    checkable_by_medication_safety: bool = Field(
        description="False for a free-text substance or a non-medication category: medication "
        "safety checks cannot match it against orders."
    )
    medication_safety_note: str | None = None
    clinical_status: ClinicalStatus | None = Field(
        description="Absent when the entry is entered-in-error."
    )
    verification_status: VerificationStatus | None
    type: AllergyType | None = None
    category: list[AllergyCategory] = Field(default_factory=list)
    criticality: Criticality | None = None
    onset: str | None = None
    reactions: list[Reaction] = Field(default_factory=list)
    recorded_date: str | None = None
    recorder: Recorder | None = None
    note: str | None = None


class AllergyList(BaseModel):
    """A patient's allergies: active first (high criticality first), then the others."""

    items: list[Allergy]
    complete: bool = Field(description="False when the list was cut at the read bound.")
    next: str | None = Field(
        default=None,
        description="Cursor of the next page (send it as `cursor` with the same filters); "
        "absent on the last page.",
    )
