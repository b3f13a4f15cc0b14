"""Request and response documents of the vitals API (our own shape, not the FHIR Observation)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoAwareDateTime

__all__ = [
    "ComponentOut",
    "MeasurementIn",
    "VitalSignOut",
    "VitalUpdate",
    "VitalsPage",
    "VitalsRecord",
    "VitalsRecorded",
]

FHIR_ID_PATTERN: Final = r"^[A-Za-z0-9\-.]{1,64}$"
LOINC_PATTERN: Final = r"^\d{1,7}-\d$"

_Loinc = Annotated[str, StringConstraints(pattern=LOINC_PATTERN, max_length=10)]
# A UCUM code as typed: printable ASCII, no spaces (UCUM has none).
_Ucum = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,32}$", max_length=32)]
_FhirId = Annotated[str, StringConstraints(pattern=FHIR_ID_PATTERN, max_length=64)]
_Value = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]


class MeasurementIn(BaseModel):
    """One measurement: ``value`` + ``unit``; a blood pressure (85354-9) takes ``systolic`` and
    ``diastolic`` (one unit for both) instead of ``value``."""

    model_config = ConfigDict(extra="forbid")

    code: _Loinc = Field(
        description=(
            "LOINC code: 85354-9 blood pressure, 8867-4 heart rate, 9279-1 respiratory rate, "
            "8310-5 body temperature, 2708-6/59408-5 oxygen saturation, 29463-7 body weight, "
            "8302-2 body height, 39156-5 BMI, 9843-4 head circumference."
        ),
        examples=["29463-7"],
    )
    value: _Value | None = None
    systolic: _Value | None = None
    diastolic: _Value | None = None
    unit: _Ucum = Field(description="UCUM code, e.g. kg, [lb_av], Cel, [degF], mm[Hg], /min, %.")


class VitalsRecord(BaseModel):
    """A set of vital signs taken together (one time, optionally one encounter)."""

    model_config = ConfigDict(extra="forbid")

    measurements: list[MeasurementIn] = Field(min_length=1, max_length=12)
    effective: IsoAwareDateTime | None = Field(
        default=None, description="When they were taken (default: now)."
    )
    encounter_id: _FhirId | None = Field(
        default=None, description="This patient's Encounter the vitals were taken in."
    )


class VitalUpdate(BaseModel):
    """A corrected measurement (same code); needs ``If-Match``. The status becomes ``amended``."""

    model_config = ConfigDict(extra="forbid")

    value: _Value | None = None
    systolic: _Value | None = None
    diastolic: _Value | None = None
    unit: _Ucum
    effective: IsoAwareDateTime | None = Field(
        default=None, description="When it was taken (default: unchanged)."
    )


class ComponentOut(BaseModel):
    """One component of a panel (systolic or diastolic pressure)."""

    code: str
    display: str | None = None
    value: float | None = None
    unit: str | None = None


class VitalSignOut(BaseModel):
    """One vital-sign Observation, its value in the canonical UCUM unit."""

    id: str
    version: str | None = Field(description="meta.versionId (send it back in If-Match).")
    code: str = Field(description="The LOINC code.")
    display: str | None = None
    status: str
    effective: dt.datetime | None = None
    value: float | None = None
    unit: str | None = Field(default=None, description="UCUM code of `value`.")
    components: list[ComponentOut] = Field(default_factory=list)
    encounter_id: str | None = None
    derived_from: list[str] = Field(
        default_factory=list, description="Ids of the Observations a derived value (BMI) uses."
    )


class VitalsRecorded(BaseModel):
    """What a recording stored (the measurements, and a derived BMI when there is one)."""

    items: list[VitalSignOut]


class VitalsPage(BaseModel):
    """One page of a patient's vital signs, latest first."""

    items: list[VitalSignOut]
    next: str | None = Field(description="URL of the next page (opaque page token), if any.")
