"""Dispensing a verified order (ADR 0034): FEFO from stock, a MedicationDispense per lot, and
what a label printer needs.

In one database transaction, under the tenant's ledger lock: the order must be approved and
active; the product must be the drug ordered (its RxCUI is the order's); the quantity, with what
was already dispensed against the order (the ledger's dispense rows less its returns), must not
exceed ``dispenseRequest.quantity * (1 + numberOfRepeatsAllowed)``. Stock is taken FEFO, then
the MedicationDispenses (one per lot; the lot and expiry in the contained Medication's
``batch``) are written to HAPI in one transaction — conditional on the ledger entry's id, so a
retry after a lost commit does not write them twice — and only then does the ledger commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import PharmacyLedgerEntry, PharmacyProduct, PharmacyVerification
from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.fhir import TenantFhirClient
from ehr.modules.medication_safety import RXNORM_SYSTEM
from ehr.modules.pharmacy.catalog import NDC_SYSTEM
from ehr.modules.pharmacy.inventory import Picked, StockBook
from ehr.platform import events

__all__ = ["LEDGER_SYSTEM", "Dispensed", "dispense", "dispensed_so_far", "label_for"]

LEDGER_SYSTEM: Final = "urn:ehr:pharmacy-ledger"
_UCUM: Final = "http://unitsofmeasure.org"
_SUPPLY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_ZERO: Final = Decimal(0)


class OrderNotVerifiedError(ConflictError):
    code = "order_not_verified"
    title = "The order has not been approved by a pharmacist"


class OrderNotActiveError(ConflictError):
    code = "order_not_active"
    title = "The order is not active"


class ExceedsOrderError(ConflictError):
    code = "exceeds_order"
    title = "More than the order allows"


class ProductNotOrderedError(RequestValidationFailed):
    code = "product_not_ordered"
    title = "This product is not the drug ordered"


@dataclass(frozen=True, slots=True)
class Dispensed:
    dispenses: list[dict[str, Any]]
    picked: list[Picked]
    product: PharmacyProduct
    fill_type: str
    dispensed_total: Decimal
    allowed_total: Decimal | None
    label: dict[str, Any]


def _ordered_rxcui(order: Mapping[str, Any]) -> str | None:
    concept = order.get("medicationCodeableConcept") or {}
    for coding in concept.get("coding") or ():
        if coding.get("system") == RXNORM_SYSTEM and coding.get("code"):
            return str(coding["code"])
    return None


def _allowed(order: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None, int]:
    """(per fill, total allowed, repeats); None when the order names no quantity."""
    request = order.get("dispenseRequest") or {}
    repeats = int(request.get("numberOfRepeatsAllowed") or 0)
    value = (request.get("quantity") or {}).get("value")
    if value is None:
        return None, None, repeats
    per_fill = Decimal(str(value))
    return per_fill, per_fill * (1 + repeats), repeats


async def dispensed_so_far(session: AsyncSession, tenant_id: Any, order_id: str) -> Decimal:
    """Dispensed against the order, less what came back (from the ledger)."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(PharmacyLedgerEntry.quantity), 0)).where(
            PharmacyLedgerEntry.tenant_id == tenant_id,
            PharmacyLedgerEntry.reference == f"MedicationRequest/{order_id}",
            PharmacyLedgerEntry.kind.in_(("dispense", "return")),
        )
    )
    return -Decimal(total or 0)


def _fill_type(already: Decimal, quantity: Decimal, per_fill: Decimal | None) -> str:
    """v3 ActPharmacySupplyType: FF/RF first fill or refill, …P partial, …C completing one."""
    if per_fill is None or per_fill <= _ZERO:
        return "FF" if already == _ZERO else "RF"
    index = int(already // per_fill)
    prefix = "FF" if index == 0 else "RF"
    if already % per_fill != _ZERO:
        return f"{prefix}C" if (already + quantity) % per_fill == _ZERO else f"{prefix}P"
    return prefix if quantity >= per_fill else f"{prefix}P"


async def dispense(
    session: AsyncSession,
    fhir: TenantFhirClient,
    book: StockBook,
    row: PharmacyVerification,
    *,
    location_id: Any,
    quantity: Decimal,
    product_id: Any | None,
    days_supply: int | None,
    handed_over_at: datetime | None,
) -> Dispensed:
    """Dispense ``quantity`` of the order from the location (see the module docstring)."""
    if row.state != "approved":
        raise OrderNotVerifiedError(
            f"The order is {row.state}, not approved", extra={"state": row.state}
        )
    order = await fhir.read("MedicationRequest", row.medication_request_id)
    if order.get("status") != "active":
        raise OrderNotActiveError(
            f"The order is {order.get('status')}", extra={"status": order.get("status")}
        )
    if str((order.get("meta") or {}).get("versionId") or "") not in ("", row.version):
        raise OrderNotVerifiedError("The order changed since it was verified")
    rxcui = _ordered_rxcui(order)
    product = await _product(session, book, rxcui, product_id)
    await book.lock()
    already = await dispensed_so_far(session, book.tenant_id, row.medication_request_id)
    per_fill, allowed, _ = _allowed(order)
    if allowed is not None and already + quantity > allowed:
        raise ExceedsOrderError(
            "The order and its refills do not allow that much",
            extra={"remaining": f"{max(allowed - already, _ZERO):f}", "unit": product.unit},
        )
    reference = f"MedicationRequest/{row.medication_request_id}"
    picked = await book.take(location_id, product.id, quantity, reference=reference)
    fill_type = _fill_type(already, quantity, per_fill)
    now = datetime.now(UTC)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _dispense_resource(
                    order,
                    row,
                    product,
                    part,
                    fill_type,
                    days_supply,
                    book.actor,
                    now,
                    handed_over_at or now,
                ),
                "request": {
                    "method": "POST",
                    "url": "MedicationDispense",
                    "ifNoneExist": f"identifier={LEDGER_SYSTEM}|{part.entry.id}",
                },
            }
            for part in picked
        ],
    }
    response = await fhir.transaction(bundle)
    locations = [
        str((entry.get("response") or {}).get("location") or "")
        for entry in response.get("entry") or ()
    ]
    dispenses = [
        {
            "reference": loc.split("/_history", 1)[0],
            "lot": part.lot.lot_number,
            "quantity": part.quantity,
        }
        for loc, part in zip(locations, picked, strict=False)
    ]
    total = already + quantity
    events.emit(
        session,
        events.new_event(
            "medication.dispensed",
            tenant=book.tenant,
            subject=f"Patient/{row.patient_id}",
            resource=reference,
            data={"fill": fill_type, "dispenses": [d["reference"] for d in dispenses][:50]},
        ),
    )
    patient = await fhir.read("Patient", row.patient_id)
    label = label_for(order, product, picked, fill_type, total, allowed, per_fill, now)
    label["patient"] = _name(patient)
    return Dispensed(dispenses, picked, product, fill_type, total, allowed, label)


async def _product(
    session: AsyncSession, book: StockBook, rxcui: str | None, product_id: Any | None
) -> PharmacyProduct:
    if product_id is not None:
        product = await book.product(product_id)
        if rxcui is None or product.rxcui != rxcui:
            raise ProductNotOrderedError(
                "The product's RxNorm concept is not the order's",
                extra={"ordered": rxcui, "product": product.rxcui},
            )
        return product
    if rxcui is None:
        raise ProductNotOrderedError("The order names no RxNorm drug: give the product")
    found = await session.scalar(
        sa.select(PharmacyProduct)
        .where(PharmacyProduct.tenant_id == book.tenant_id, PharmacyProduct.rxcui == rxcui)
        .order_by(PharmacyProduct.created_at)
        .limit(1)
    )
    if found is None:
        raise ProductNotOrderedError(
            "No product of the ordered drug is registered", extra={"ordered": rxcui}
        )
    return found


def _dispense_resource(
    order: Mapping[str, Any],
    row: PharmacyVerification,
    product: PharmacyProduct,
    part: Picked,
    fill_type: str,
    days_supply: int | None,
    actor: str,
    now: datetime,
    handed_over: datetime,
) -> dict[str, Any]:
    kind, _, value = actor.partition(":")
    performer = (
        {"identifier": {"system": "urn:ehr:user", "value": value}}
        if kind == "user"
        else {"display": actor}
    )
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": LEDGER_SYSTEM, "value": str(part.entry.id)}],
        "status": "completed",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "dispensed",
                "code": {
                    "coding": [
                        {"system": RXNORM_SYSTEM, "code": product.rxcui, "display": product.name},
                        {"system": NDC_SYSTEM, "code": product.ndc11},
                    ],
                    "text": product.name,
                },
                "batch": {
                    "lotNumber": part.lot.lot_number,
                    "expirationDate": part.lot.expires_on.isoformat(),
                },
            }
        ],
        "medicationReference": {"reference": "#dispensed", "display": product.name},
        "subject": {"reference": f"Patient/{row.patient_id}"},
        "authorizingPrescription": [
            {"reference": f"MedicationRequest/{row.medication_request_id}"}
        ],
        "type": {"coding": [{"system": _SUPPLY_TYPE, "code": fill_type}]},
        "quantity": {
            "value": float(part.quantity) if part.quantity % 1 else int(part.quantity),
            "unit": product.unit,
            "system": _UCUM,
            "code": product.unit,
        },
        "performer": [{"actor": performer}],
        "whenPrepared": now.isoformat(),
        "whenHandedOver": handed_over.isoformat(),
    }
    if order.get("encounter"):
        resource["context"] = order["encounter"]
    if days_supply is not None:
        resource["daysSupply"] = {
            "value": days_supply,
            "unit": "days",
            "system": _UCUM,
            "code": "d",
        }
    if order.get("dosageInstruction"):
        resource["dosageInstruction"] = order["dosageInstruction"]
    return resource


def _name(patient: Mapping[str, Any]) -> str | None:
    for name in patient.get("name") or ():
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or ()), name.get("family") or ""]
        joined = " ".join(str(p) for p in parts if p)
        if joined:
            return joined
    return None


def _sig(order: Mapping[str, Any]) -> str:
    texts = [str(d.get("text")) for d in order.get("dosageInstruction") or () if d.get("text")]
    return "; ".join(texts)


def label_for(
    order: Mapping[str, Any],
    product: PharmacyProduct,
    picked: Sequence[Picked],
    fill_type: str,
    total: Decimal,
    allowed: Decimal | None,
    per_fill: Decimal | None,
    now: datetime,
) -> dict[str, Any]:
    """What a label printer needs (no more): drug, directions, quantity, lots and expiry, the
    prescriber, the fills left, and the federal transfer warning for scheduled drugs (the
    caller adds the patient's name)."""
    requester = order.get("requester") or {}
    fills_left = None
    if allowed is not None and per_fill:
        fills_left = int(max(allowed - total, _ZERO) // per_fill)
    return {
        "medication": product.name,
        "ndc11": product.ndc11,
        "directions": _sig(order),
        "quantity": f"{sum((p.quantity for p in picked), _ZERO):f}",
        "unit": product.unit,
        "lots": [
            {"lot_number": p.lot.lot_number, "expires_on": p.lot.expires_on.isoformat()}
            for p in picked
        ],
        "prescriber": requester.get("display"),
        "fill": fill_type,
        "refills_left": fills_left,
        "dispensed_on": now.date().isoformat(),
        "schedule": product.schedule,
        "warning": (
            "Caution: Federal law prohibits the transfer of this drug to any person other than "
            "the patient for whom it was prescribed."
            if product.schedule is not None
            else None
        ),
    }
