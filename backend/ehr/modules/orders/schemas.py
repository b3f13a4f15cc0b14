"""Request and response documents of the orders API (our own shapes, not the FHIR resources).

An order is created from one of four documents, told apart by ``kind`` (a discriminated union,
:data:`OrderCreate`): ``lab`` (a LOINC-coded ServiceRequest), ``imaging`` (a procedure code in
SNOMED CT, LOINC or CPT, body site, reason), ``referral`` (a SNOMED CT specialty, performer,
reason) and ``medication`` (a MedicationRequest: RxNorm code, structured dosage, dispense
quantity, repeats). The order sets module stores exactly these documents as its members, so the
shapes are part of the public surface and change only compatibly.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.core.intake import IsoAwareDateTime
from ehr.modules.clinical_record import Recorder

__all__ = [
    "ORDER_KINDS",
    "ORDER_STATUSES",
    "CodingIn",
    "CodingOut",
    "DispenseIn",
    "DosageIn",
    "DoseIn",
    "Finding",
    "ImagingOrderCreate",
    "LabOrderCreate",
    "MedicationOrderCreate",
    "Order",
    "OrderCreate",
    "OrderId",
    "OrderKind",
    "OrderList",
    "OrderPolicy",
    "OrderPolicyUpdate",
    "OrderStatus",
    "Override",
    "PerformerIn",
    "Priority",
    "ReasonIn",
    "ReferralOrderCreate",
    "SignRequest",
    "SignResult",
    "TransitionRequest",
]

OrderKind = Literal["lab", "imaging", "referral", "medication"]
ORDER_KINDS: Final = ("lab", "imaging", "referral", "medication")
# FHIR request-status codes an order of ours takes (ServiceRequest and MedicationRequest share
# them for these; MedicationRequest's "cancelled" is our "revoked", mapped in service.py).
OrderStatus = Literal["draft", "active", "on-hold", "completed", "revoked", "entered-in-error"]
ORDER_STATUSES: Final = ("draft", "active", "on-hold", "completed", "revoked", "entered-in-error")
Priority = Literal["routine", "urgent", "asap", "stat"]

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
_FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)]
_System = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
_Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
_Reference = Annotated[
    str,
    StringConstraints(
        pattern=r"^(Practitioner|PractitionerRole|Organization|HealthcareService)/[A-Za-z0-9\-.]{1,64}$",
        max_length=100,
    ),
]

OrderId = Annotated[
    str,
    Path(
        pattern=r"^(ServiceRequest|MedicationRequest)-[A-Za-z0-9\-.]{1,64}$",
        max_length=90,
        description="The order's id: `ServiceRequest-<id>` or `MedicationRequest-<id>`.",
    ),
]


class CodingIn(BaseModel):
    """A code in a system (which systems each field takes: the field's description; another
    system is 422 ``unknown_code_system``, a malformed code 422 ``invalid_code``)."""

    model_config = ConfigDict(extra="forbid")

    system: _System
    code: _Code
    display: _Text | None = None


class CodingOut(BaseModel):
    """A coding as stored."""

    system: str | None = None
    code: str
    display: str | None = None


ReasonIn = CodingIn


class PerformerIn(BaseModel):
    """Who is asked to perform: a FHIR reference in the tenant and/or a display name."""

    model_config = ConfigDict(extra="forbid")

    reference: _Reference | None = Field(
        default=None, description="`Practitioner/<id>`, `PractitionerRole/…`, `Organization/…`."
    )
    display: _Text | None = None


class _OrderFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: _FhirId | None = Field(
        default=None,
        description="Optional; if given it must be the path's patient (else 422 patient_mismatch).",
    )
    encounter_id: _FhirId | None = Field(
        default=None,
        description="The patient's Encounter this order belongs to (another patient's: 422).",
    )
    priority: Priority = "routine"
    reason: list[ReasonIn] = Field(
        default_factory=list,
        max_length=5,
        description="Why (reasonCode): SNOMED CT or ICD-10-CM.",
    )
    note: _Note | None = None


class LabOrderCreate(_OrderFields):
    """A laboratory test: a ServiceRequest coded in LOINC (code shape and check digit checked)."""

    kind: Literal["lab"]
    code: CodingIn = Field(
        description="LOINC (http://loinc.org), e.g. 2823-3 potassium.",
        examples=[{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}],
    )
    occurrence: IsoAwareDateTime | None = Field(
        default=None, description="When the specimen should be collected."
    )


class ImagingOrderCreate(_OrderFields):
    """An imaging study: a ServiceRequest with a procedure code, body site and reason."""

    kind: Literal["imaging"]
    code: CodingIn = Field(
        description="SNOMED CT, LOINC (a radiology code) or CPT (http://www.ama-assn.org/go/cpt)."
    )
    body_site: CodingIn | None = Field(default=None, description="SNOMED CT body structure.")
    occurrence: IsoAwareDateTime | None = None


class ReferralOrderCreate(_OrderFields):
    """A referral: a ServiceRequest (code: patient referral) to a specialty and performer."""

    kind: Literal["referral"]
    specialty: CodingIn = Field(
        description="SNOMED CT specialty / performer type (e.g. 394579002 cardiology).",
    )
    performer: PerformerIn | None = None
    reason: list[ReasonIn] = Field(
        min_length=1, max_length=5, description="Why the patient is referred (required)."
    )


class DoseIn(BaseModel):
    """A dose: a value and its UCUM unit (mg, mL, [iU], {tbl} ...)."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(gt=0, le=1_000_000)
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class DosageIn(BaseModel):
    """One structured dosage instruction: dose, route, and how often (``frequency`` times per
    ``period`` ``period_unit``) or as needed."""

    model_config = ConfigDict(extra="forbid")

    dose: DoseIn
    route: CodingIn = Field(description="SNOMED CT route of administration (26643006 oral).")
    frequency: int = Field(default=1, ge=1, le=48)
    period: float = Field(default=1, gt=0, le=1000)
    period_unit: Literal["min", "h", "d", "wk", "mo"] = "d"
    as_needed: bool = False
    text: _Text | None = Field(default=None, description="The instruction as the patient reads it.")


class DispenseIn(BaseModel):
    """What the pharmacy dispenses: a quantity (UCUM unit) and, optionally, days of supply."""

    model_config = ConfigDict(extra="forbid")

    quantity: DoseIn
    supply_days: int | None = Field(default=None, ge=1, le=366)


class MedicationOrderCreate(_OrderFields):
    """A medication order: a MedicationRequest with an RxNorm code and a structured dosage."""

    kind: Literal["medication"]
    medication: CodingIn = Field(
        description="RxNorm (http://www.nlm.nih.gov/research/umls/rxnorm).",
        examples=[
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "855332",
                "display": "warfarin sodium 5 MG Oral Tablet",
            }
        ],
    )
    dosage: DosageIn
    dispense: DispenseIn | None = None
    repeats: int = Field(default=0, ge=0, le=11, description="numberOfRepeatsAllowed.")


OrderCreate = Annotated[
    LabOrderCreate | ImagingOrderCreate | ReferralOrderCreate | MedicationOrderCreate,
    Field(discriminator="kind"),
]


class Override(BaseModel):
    """The signer's decision to sign despite interruptive findings, and why."""

    model_config = ConfigDict(extra="forbid")

    reason: _Text
    rules: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None,
        max_length=50,
        description="The rules overridden; if given, every blocking finding's rule must be in it.",
    )


class SignRequest(BaseModel):
    """Sign a draft (send the ETag you read as If-Match)."""

    model_config = ConfigDict(extra="forbid")

    override: Override | None = None


class TransitionRequest(BaseModel):
    """A status change that needs a reason (revoke, hold) or may carry one."""

    model_config = ConfigDict(extra="forbid")

    reason: _Text | None = None


class Finding(BaseModel):
    """One finding of the sign checks (medication safety or duplicate order)."""

    rule: str
    category: str
    severity: str
    display: Literal["interruptive", "passive", "informational"]
    summary: str
    detail: str | None = None
    implicated: list[str] = Field(default_factory=list)


class Order(BaseModel):
    """An order as the API shows it."""

    id: str = Field(description="`ServiceRequest-<id>` or `MedicationRequest-<id>`.")
    resource: str = Field(description="The FHIR reference (`ServiceRequest/<id>`).")
    version: str | None = None
    kind: OrderKind | None = None
    status: OrderStatus | None = None
    intent: str | None = None
    patient_id: str
    encounter_id: str | None = None
    code: CodingOut | None = None
    text: str | None = None
    priority: str | None = None
    authored_on: str | None = None
    requester: Recorder | None = None
    status_reason: str | None = None
    detail: dict[str, object] = Field(
        default_factory=dict,
        description="Kind-specific fields (body site, specialty, dosage ...), as sent.",
    )


class OrderList(BaseModel):
    """A patient's orders, newest first."""

    items: list[Order]
    complete: bool = Field(description="False when the read was cut at its bound.")
    next: str | None = None


class SignResult(BaseModel):
    """A signed order and what the checks found (the overridden findings included)."""

    order: Order
    findings: list[Finding]
    overridden: list[str] = Field(default_factory=list, description="DetectedIssue references.")
    provenance: str | None = None


class OrderPolicy(BaseModel):
    """A tenant's order policy: duplicate-order windows per kind (hours; 0 = not checked) and
    whether a duplicate interrupts signing."""

    lab_duplicate_window_hours: int
    imaging_duplicate_window_hours: int
    referral_duplicate_window_hours: int
    duplicate_display: Literal["interruptive", "passive"]
    is_default: bool = False


class OrderPolicyUpdate(BaseModel):
    """The new policy (replaces the tenant's)."""

    model_config = ConfigDict(extra="forbid")

    lab_duplicate_window_hours: int = Field(ge=0, le=24 * 90)
    imaging_duplicate_window_hours: int = Field(ge=0, le=24 * 90)
    referral_duplicate_window_hours: int = Field(ge=0, le=24 * 365)
    duplicate_display: Literal["interruptive", "passive"] = "interruptive"
