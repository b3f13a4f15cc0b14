"""The ``/api/pharmacy`` documents (ADR 0034). Quantities are decimals sent and answered as
strings or numbers (answers: strings, so ``2.500`` is exact), in the product's UCUM unit."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

__all__ = [
    "Adjustment",
    "BalanceList",
    "BalanceOut",
    "Count",
    "Decision",
    "DecisionOut",
    "DiscrepancyList",
    "DiscrepancyOut",
    "DispenseLine",
    "DispenseOut",
    "DispenseRequest",
    "FindingOut",
    "InventoryLineOut",
    "InventoryReport",
    "LedgerEntryOut",
    "LedgerList",
    "LedgerVerificationOut",
    "LocationCreate",
    "LocationList",
    "LocationOut",
    "LotOut",
    "Movement",
    "OrderPharmacyStatus",
    "ProductCreate",
    "ProductList",
    "ProductOut",
    "QueueEntryOut",
    "QueueList",
    "Recall",
    "Receipt",
    "Return",
    "ReviewOut",
    "Schedule",
    "Transfer",
    "VerificationState",
    "Waste",
    "Witness",
]

Schedule = Literal["CII", "CIII", "CIV", "CV"]


def _decimal_schema(minimum: int | None) -> WithJsonSchema:
    """A decimal sent as a number or a string (``"2.5"``): both bounded."""
    number: dict[str, object] = {"type": "number", "maximum": 10**9}
    if minimum is not None:
        number["minimum"] = minimum
    sign = "-?" if minimum is None else ""
    return WithJsonSchema(
        {
            "anyOf": [
                number,
                {
                    "type": "string",
                    "maxLength": 16,
                    "pattern": rf"^{sign}[0-9]{{1,10}}(\.[0-9]{{1,3}})?$",
                },
            ]
        }
    )


Quantity = Annotated[
    Decimal,
    Field(gt=0, le=Decimal(10) ** 9, max_digits=14, decimal_places=3),
    _decimal_schema(0),
]
SignedQuantity = Annotated[
    Decimal,
    Field(ge=-(Decimal(10) ** 9), le=Decimal(10) ** 9, max_digits=14, decimal_places=3),
    _decimal_schema(None),
]
Amount = Annotated[
    Decimal,
    Field(ge=0, le=Decimal(10) ** 9, max_digits=14, decimal_places=3),
    _decimal_schema(0),
]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Reference = Annotated[
    str,
    Field(
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$",
        description="What the movement is for (`PurchaseOrder:4711`, `MedicationDispense/12`).",
    ),
]
LotNumber = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocationCreate(_Body):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)


class LocationOut(_Body):
    id: uuid.UUID
    code: str
    name: str
    created_at: datetime


class LocationList(_Body):
    items: list[LocationOut]


class ProductCreate(_Body):
    ndc11: str = Field(
        min_length=11,
        max_length=11,
        pattern=r"^[0-9]{11}$",
        description="The package's NDC in 11 digits.",
    )
    rxcui: str = Field(
        min_length=1,
        max_length=16,
        pattern=r"^[0-9]{1,16}$",
        description="Its RxNorm concept (SCD/SBD).",
    )
    name: str = Field(min_length=1, max_length=300)
    unit: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9{}/.\[\]%*-]+$",
        description="The UCUM unit stock is counted in: `{tbl}`, `{cap}`, `mL`, `{vial}`.",
    )
    divisible: bool = Field(default=False, description="Whether a fraction of a unit may move.")
    schedule: Schedule | None = Field(
        default=None,
        description="DEA schedule; omitted: derived from the ingredients (the strictest).",
    )
    reorder_level: Amount = Field(default=Decimal(0), description="Below it: medication.stock_low.")


class ProductOut(_Body):
    id: uuid.UUID
    ndc11: str
    rxcui: str
    name: str
    unit: str
    divisible: bool
    schedule: Schedule | None
    reorder_level: Decimal
    created_at: datetime


class ProductList(_Body):
    items: list[ProductOut]


class LotOut(_Body):
    id: uuid.UUID
    product_id: uuid.UUID
    lot_number: str
    expires_on: date
    recalled_at: datetime | None


class BalanceOut(_Body):
    location_id: uuid.UUID
    product_id: uuid.UUID
    ndc11: str
    product: str
    unit: str
    schedule: Schedule | None
    lot: LotOut
    quantity: Decimal


class BalanceList(_Body):
    items: list[BalanceOut]


class LedgerEntryOut(_Body):
    id: uuid.UUID
    seq: int
    kind: str
    location_id: uuid.UUID
    product_id: uuid.UUID
    lot_id: uuid.UUID
    quantity: Decimal = Field(description="What the lot's balance at the location changed by.")
    balance_after: Decimal
    counted: Decimal | None
    actor: str
    witness: str | None
    reason: str | None
    reference: str | None
    occurred_at: datetime
    hash: str


class Movement(_Body):
    """What a stock movement wrote: its ledger rows."""

    entries: list[LedgerEntryOut]


class LedgerList(_Body):
    items: list[LedgerEntryOut]
    next_after_seq: int | None = Field(description="Pass as `after_seq` for the next page.")


class Receipt(_Body):
    location_id: uuid.UUID
    product_id: uuid.UUID
    lot_number: LotNumber
    expires_on: date
    quantity: Quantity
    reference: Reference | None = None


class Adjustment(_Body):
    location_id: uuid.UUID
    lot_id: uuid.UUID
    quantity: SignedQuantity = Field(description="Signed: -2 two damaged, +1 one found.")
    reason: Text


class Transfer(_Body):
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    lot_id: uuid.UUID
    quantity: Quantity
    reference: Reference | None = None


class Count(_Body):
    location_id: uuid.UUID
    lot_id: uuid.UUID
    counted: Amount


class Witness(_Body):
    """A second person, authenticated in this request (nothing is issued to them)."""

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    code: str | None = Field(
        default=None,
        min_length=6,
        max_length=8,
        pattern=r"^[0-9]{6,8}$",
        description="Their TOTP code, when enrolled.",
    )


class Waste(_Body):
    location_id: uuid.UUID
    lot_id: uuid.UUID
    quantity: Quantity
    reason: Text
    witness: Witness | None = Field(
        default=None, description="Required for a scheduled product: a pharmacist or nurse."
    )
    reference: Reference | None = None


class Return(_Body):
    location_id: uuid.UUID
    lot_id: uuid.UUID
    quantity: Quantity
    reference: Reference | None = None


class Recall(_Body):
    reason: Text


class LedgerVerificationOut(_Body):
    intact: bool
    entries: int
    head_hash: str
    breaks: list[dict[str, int | str]] = Field(description="`seq` and `problem` of each break.")


class DiscrepancyOut(_Body):
    entry: LedgerEntryOut
    ndc11: str
    product: str
    schedule: Schedule | None
    lot_number: str
    location: str
    expected: Decimal = Field(description="What the ledger held before the count.")
    counted: Decimal


class DiscrepancyList(_Body):
    items: list[DiscrepancyOut]


class InventoryLineOut(_Body):
    location: str
    ndc11: str
    product: str
    schedule: Schedule | None
    unit: str
    lot_number: str
    expires_on: date
    quantity: Decimal
    last_seq: int


class InventoryReport(_Body):
    at: datetime
    items: list[InventoryLineOut]


# --- verification and dispensing --------------------------------------------------------------


VerificationState = Literal["pending", "approved", "rejected", "clarification", "withdrawn"]


class QueueEntryOut(_Body):
    order_id: str = Field(description="The MedicationRequest's id.")
    patient_id: str
    medication: str
    priority: str
    authored_at: datetime
    prescriber: str | None
    encounter_id: str | None
    state: VerificationState
    claimed_by: str | None
    claim_expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    task_id: str | None


class QueueList(_Body):
    items: list[QueueEntryOut]
    next_offset: int | None


class FindingOut(_Body):
    rule: str
    category: str
    severity: str
    display: str
    summary: str
    implicated: list[str]
    new_since_signing: bool = Field(
        description="It involves a medication or allergy recorded after the order was signed."
    )


class ReviewOut(_Body):
    entry: QueueEntryOut
    order: dict[str, object] = Field(description="The MedicationRequest as it is now.")
    findings: list[FindingOut]
    record_complete: bool = Field(description="False: the record was larger than read.")


class Decision(_Body):
    decision: Literal["approve", "reject", "clarify"]
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Required to reject, and the question to the prescriber when clarifying.",
    )
    acknowledge_findings: bool = Field(
        default=False, description="Approving despite interruptive findings, having read them."
    )


class DecisionOut(_Body):
    entry: QueueEntryOut
    task: str = Field(description="The Task recording the decision (`Task/<id>`).")
    findings: list[FindingOut]


class DispenseRequest(_Body):
    location_id: uuid.UUID
    quantity: Quantity
    product_id: uuid.UUID | None = Field(
        default=None, description="The product to dispense; omitted: one of the ordered drug."
    )
    days_supply: int | None = Field(default=None, ge=1, le=366)
    handed_over_at: datetime | None = None


class DispenseLine(_Body):
    dispense: str = Field(description="`MedicationDispense/<id>`.")
    lot_number: str
    quantity: Decimal


class DispenseOut(_Body):
    order_id: str
    fill: str = Field(description="v3 ActPharmacySupplyType: FF, RF, FFP, RFP, FFC, RFC.")
    dispensed: list[DispenseLine]
    dispensed_total: Decimal
    allowed_total: Decimal | None
    label: dict[str, object] = Field(description="What a label printer needs.")


class OrderPharmacyStatus(_Body):
    order_id: str
    state: VerificationState
    decided_at: datetime | None
    task_id: str | None
    dispensed_total: Decimal
