"""Request and response documents of the results API (our own shapes, not FHIR's)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal, Self

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from ehr.core.intake import IsoAwareDateTime

__all__ = [
    "AcknowledgeIn",
    "Acknowledgement",
    "CodeIn",
    "CodeOut",
    "CriticalLimitIn",
    "CriticalLimitOut",
    "CriticalResult",
    "CriticalResultList",
    "ObservationIn",
    "QuantityIn",
    "RangeIn",
    "ReportId",
    "ReportStatus",
    "ResultList",
    "ResultObservation",
    "ResultPolicyIn",
    "ResultPolicyOut",
    "ResultRecord",
    "ResultReport",
    "StoredStatus",
    "TrendPoint",
    "TrendSeries",
]

FHIR_ID_PATTERN: Final = r"^[A-Za-z0-9\-.]{1,64}$"
LOINC_PATTERN: Final = r"^\d{1,7}-\d$"

ReportStatus = Literal["preliminary", "final"]
StoredStatus = Literal["preliminary", "final", "amended", "corrected"]
_FhirId = Annotated[str, StringConstraints(pattern=FHIR_ID_PATTERN, max_length=64)]
_ORDERS_API_PREFIX: Final = "ServiceRequest-"


def _bare_order_id(value: object) -> object:
    """The orders API names a lab order ``ServiceRequest-<id>``; results take that or the bare
    FHIR id (what an interface engine holds)."""
    if isinstance(value, str) and value.startswith(_ORDERS_API_PREFIX):
        return value[len(_ORDERS_API_PREFIX) :]
    return value


_OrderRef = Annotated[_FhirId, BeforeValidator(_bare_order_id)]
_Loinc = Annotated[str, StringConstraints(pattern=LOINC_PATTERN, max_length=10)]
_Ucum = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,40}$", max_length=40)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_Long = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
_Value = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]

ReportId = Annotated[
    str,
    Path(pattern=FHIR_ID_PATTERN, max_length=64, description="The DiagnosticReport's FHIR id."),
]


class CodeIn(BaseModel):
    """A coding (``system`` defaults to LOINC where a LOINC code is expected)."""

    model_config = ConfigDict(extra="forbid")

    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    display: _Text | None = None


class CodeOut(BaseModel):
    system: str | None = None
    code: str
    display: str | None = None


class QuantityIn(BaseModel):
    """A measured value and its UCUM unit."""

    model_config = ConfigDict(extra="forbid")

    value: _Value
    unit: _Ucum = Field(description="UCUM code: mmol/L, mg/dL, g/dL, 10*9/L, {INR}, ng/L ...")


class RangeIn(BaseModel):
    """The laboratory's reference (normal) range, in the value's unit."""

    model_config = ConfigDict(extra="forbid")

    low: _Value | None = None
    high: _Value | None = None
    text: _Text | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("reference_range.low is above reference_range.high")
        return self


class ObservationIn(BaseModel):
    """One result of the report: exactly one of ``quantity``, ``coded``, ``text``."""

    model_config = ConfigDict(extra="forbid")

    code: _Loinc = Field(description="LOINC code of the test (check digit verified).")
    display: _Text | None = None
    quantity: QuantityIn | None = None
    coded: CodeIn | None = None
    text: _Long | None = None
    reference_range: RangeIn | None = None
    abnormal: bool = Field(
        default=False, description="Coded or text results only: the laboratory calls it abnormal."
    )
    critical: bool = Field(
        default=False,
        description="Coded or text results only: the laboratory calls it critical (e.g. a "
        "positive blood culture). Numeric results are judged by the critical-value table.",
    )
    note: _Long | None = None

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        given = [v for v in (self.quantity, self.coded, self.text) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of quantity, coded, text")
        if self.quantity is not None and (self.abnormal or self.critical):
            raise ValueError(
                "a numeric result is flagged from its ranges, not by abnormal/critical"
            )
        if self.reference_range is not None and self.quantity is None:
            raise ValueError("a reference range needs a numeric (quantity) result")
        return self


class ResultRecord(BaseModel):
    """A laboratory report and its results, recorded in one FHIR transaction."""

    model_config = ConfigDict(extra="forbid")

    order_id: _OrderRef | None = Field(
        default=None,
        description="The patient's ServiceRequest the results answer (basedOn): the orders API's "
        "`ServiceRequest-<id>` or the bare FHIR id. A final report completes it in the same "
        "transaction.",
    )
    code: _Loinc = Field(description="LOINC code of the panel or the test reported.")
    display: _Text | None = None
    status: ReportStatus = "final"
    effective: IsoAwareDateTime = Field(description="When the specimen was collected.")
    issued: IsoAwareDateTime | None = Field(default=None, description="Default: now.")
    location_id: _FhirId | None = Field(
        default=None,
        description="The unit (FHIR Location id) a critical result is routed to; default: the "
        "order's location.",
    )
    conclusion: _Long | None = None
    observations: list[ObservationIn] = Field(min_length=1, max_length=60)


class Acknowledgement(BaseModel):
    """The acknowledgement item of a critical result (a FHIR Task)."""

    task_id: str
    version: str | None = None
    status: str
    requested_at: dt.datetime | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    comment: str | None = None
    escalated: bool = Field(
        default=False,
        description="Open for longer than the tenant's escalation delay (computed at read time).",
    )


class ResultObservation(BaseModel):
    id: str
    version: str | None = None
    code: str
    display: str | None = None
    status: str
    effective: dt.datetime | None = None
    value: float | None = None
    unit: str | None = Field(default=None, description="UCUM code of `value` (as reported).")
    coded: CodeOut | None = None
    text: str | None = None
    reference_low: float | None = None
    reference_high: float | None = None
    interpretation: str | None = Field(default=None, description="v3: N, L, H, LL, HH, A, AA.")
    critical: bool = False


class ResultReport(BaseModel):
    id: str
    version: str | None = None
    patient_id: str
    order_id: str | None = None
    code: str
    display: str | None = None
    status: str
    effective: dt.datetime | None = None
    issued: dt.datetime | None = None
    performer: str | None = None
    conclusion: str | None = None
    critical: bool = False
    observations: list[ResultObservation] = Field(default_factory=list)
    acknowledgement: Acknowledgement | None = None


class ResultList(BaseModel):
    items: list[ResultReport]
    next: str | None = Field(default=None, description="Cursor of the next (older) page.")


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: _Long | None = Field(default=None, description="What was done (read-back, plan).")


class CriticalResult(BaseModel):
    """One critical result on a unit's worklist."""

    report_id: str
    patient_id: str
    location_id: str | None = None
    code: str | None = None
    display: str | None = None
    acknowledgement: Acknowledgement


class CriticalResultList(BaseModel):
    items: list[CriticalResult]
    escalation_minutes: int
    complete: bool = Field(description="False when the list was cut at the read bound.")


class TrendPoint(BaseModel):
    observation_id: str
    effective: dt.datetime
    value: float = Field(description="In the series' `unit`.")
    original_value: float
    original_unit: str
    interpretation: str | None = None
    critical: bool = False
    status: str


class TrendSeries(BaseModel):
    code: str
    display: str | None = None
    unit: str | None = Field(description="UCUM unit every point's `value` is expressed in.")
    points: list[TrendPoint] = Field(description="Oldest first.")
    skipped: int = Field(
        default=0, description="Results left out: not numeric, or in a unit of another kind."
    )
    complete: bool = Field(description="False when more points match than `limit`.")


class CriticalLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loinc: _Loinc
    unit: _Ucum
    low: _Value | None = None
    high: _Value | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.low is None and self.high is None:
            raise ValueError("a critical limit needs low, high or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class CriticalLimitOut(BaseModel):
    loinc: str
    display: str | None = None
    unit: str
    low: float | None = None
    high: float | None = None
    source: str = Field(description="The shipped row's citation key, or `tenant`.")
    citation: str | None = None


class ResultPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    escalation_minutes: int = Field(default=60, ge=1, le=1440)
    patient_release_hours: int = Field(default=0, ge=0, le=168)
    critical_overrides: list[CriticalLimitIn] = Field(default_factory=list, max_length=200)


class ResultPolicyOut(BaseModel):
    escalation_minutes: int
    patient_release_hours: int
    critical_overrides: list[CriticalLimitOut]
    critical_values: list[CriticalLimitOut] = Field(description="The table in force.")
    is_default: bool
    updated_by: str | None = None
    updated_at: dt.datetime | None = None
