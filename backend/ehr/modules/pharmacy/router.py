"""``/api/pharmacy``: locations, products, stock movements and the controlled-substance record
(ADR 0034).

Technicians and pharmacists (``pharmacy:inventory``) receive, move, count, return and waste
stock; pharmacists (``pharmacy:manage``) register products and locations, recall lots and read
the ledger, its verification, the discrepancy report and the inventory. Every write is a
security event on the audit trail; movements take an ``Idempotency-Key`` (a retried receipt
must not book the stock twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.medication_safety import KnowledgeDep
from ehr.modules.pharmacy import catalog, ledger, reports
from ehr.modules.pharmacy.inventory import StockBook, balances, stock_gate
from ehr.modules.pharmacy.schemas import (
    Adjustment,
    BalanceList,
    Count,
    DiscrepancyList,
    InventoryReport,
    LedgerList,
    LedgerVerificationOut,
    LocationCreate,
    LocationList,
    LocationOut,
    LotOut,
    Movement,
    ProductCreate,
    ProductList,
    ProductOut,
    Recall,
    Receipt,
    Return,
    Transfer,
    Waste,
)
from ehr.modules.pharmacy.views import (
    balance_out,
    discrepancy_out,
    entry_out,
    inventory_line_out,
    location_out,
    lot_out,
    product_out,
)
from ehr.modules.pharmacy.witness import authenticate_witness
from ehr.platform.audit.dependencies import record_principal_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import IdempotencyDep

__all__ = ["router"]

router = APIRouter(prefix="/api/pharmacy", tags=["pharmacy"], route_class=IntakeRoute)

Stocker = Annotated[Principal, RequirePermission(Permission.PHARMACY_INVENTORY)]
Manager = Annotated[Principal, RequirePermission(Permission.PHARMACY_MANAGE)]
_WRITE = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.subject}"


def _book(session: SessionDep, principal: Principal) -> StockBook:
    return StockBook(
        session, tenant_id=principal.tenant_id, tenant=principal.tenant, actor=_actor(principal)
    )


async def _audited(
    resources: ResourcesDep,
    principal: Principal,
    request: Request,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    details: dict[str, Any] | None = None,
    http_status: int = 201,
) -> None:
    await record_principal_event(
        resources.sessionmaker,
        principal,
        request,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        http_status=http_status,
        details=details,
    )


# --- catalogue --------------------------------------------------------------------------------


@router.get("/locations", response_model=LocationList, responses=problem_responses(401, 403, 503))
async def list_pharmacy_locations(principal: Stocker, session: SessionDep) -> LocationList:
    """The tenant's stock locations."""
    found = await catalog.list_locations(session, principal.tenant_id)
    return LocationList(items=[location_out(location) for location in found])


@router.post("/locations", status_code=201, response_model=LocationOut, responses=_WRITE)
async def register_pharmacy_location(
    body: LocationCreate,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> LocationOut:
    """A place stock is kept (the main pharmacy, a unit's cabinet); its code is unique."""
    location = await catalog.register_location(
        session, principal.tenant_id, code=body.code, name=body.name, actor=_actor(principal)
    )
    await _audited(
        resources, principal, request, "pharmacy:location_register", "PharmacyLocation", location.id
    )
    return location_out(location)


@router.get(
    "/products", response_model=ProductList, responses=problem_responses(401, 403, 422, 503)
)
async def list_pharmacy_products(
    principal: Stocker,
    session: SessionDep,
    controlled: Annotated[
        bool | None, Query(description="Only scheduled (or unscheduled).")
    ] = None,
) -> ProductList:
    """The tenant's products."""
    found = await catalog.list_products(session, principal.tenant_id, controlled=controlled)
    return ProductList(items=[product_out(product) for product in found])


@router.post("/products", status_code=201, response_model=ProductOut, responses=_WRITE)
async def register_pharmacy_product(
    body: ProductCreate,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    knowledge: KnowledgeDep,
    request: Request,
) -> ProductOut:
    """A stocked product by NDC and RxNorm; the DEA schedule is derived from its ingredients
    when not given. An NDC the RxNorm table maps to another concept is refused (422)."""
    product = await catalog.register_product(
        session,
        principal.tenant_id,
        catalog.CodeResolver(knowledge.resolver),
        ndc11=body.ndc11,
        rxcui=body.rxcui,
        name=body.name,
        unit=body.unit,
        divisible=body.divisible,
        schedule=body.schedule,
        reorder_level=body.reorder_level,
        actor=_actor(principal),
    )
    await _audited(
        resources,
        principal,
        request,
        "pharmacy:product_register",
        "PharmacyProduct",
        product.id,
        {"schedule": product.schedule},
    )
    return product_out(product)


@router.post(
    "/lots/{lot_id}/recall",
    response_model=LotOut,
    responses=problem_responses(401, 403, 404, 413, 415, 422, 503),
)
async def recall_pharmacy_lot(
    lot_id: uuid.UUID,
    body: Recall,
    principal: Manager,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> LotOut:
    """Recall a lot: it is never picked or dispensed again."""
    lot = await _book(session, principal).recall(lot_id, body.reason)
    await _audited(
        resources, principal, request, "pharmacy:lot_recall", "PharmacyLot", lot.id, http_status=200
    )
    return lot_out(lot)


# --- stock -----------------------------------------------------------------------------------


@router.get("/stock", response_model=BalanceList, responses=problem_responses(401, 403, 422, 503))
async def list_pharmacy_stock(
    principal: Stocker,
    session: SessionDep,
    location_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
) -> BalanceList:
    """Balances by lot (FEFO order within a product), without the empty ones."""
    rows = await balances(
        session, principal.tenant_id, location_id=location_id, product_id=product_id
    )
    return BalanceList(items=[balance_out(*row) for row in rows])


async def _movement(
    principal: Principal,
    idempotency: IdempotencyDep,
    payload: Any,
    response: Response,
    work: Callable[[], Awaitable[Movement]],
) -> Any:
    async with stock_gate(principal.tenant_id):
        return await idempotency.once(payload, work, response=response, status_code=201)


@router.post("/stock/receipts", status_code=201, response_model=Movement, responses=_WRITE)
async def receive_pharmacy_stock(
    body: Receipt,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """Stock delivered to a location: the lot is created on first sight (a known lot number
    with another expiry is 409)."""

    async def work() -> Movement:
        entry = await _book(session, principal).receive(
            body.location_id,
            body.product_id,
            lot_number=body.lot_number,
            expires_on=body.expires_on,
            quantity=body.quantity,
            reference=body.reference,
        )
        await _audited(
            resources, principal, request, "pharmacy:receive", "PharmacyLedgerEntry", entry.id
        )
        return Movement(entries=[entry_out(entry)])

    return await _movement(principal, idempotency, body, response, work)


@router.post("/stock/adjustments", status_code=201, response_model=Movement, responses=_WRITE)
async def adjust_pharmacy_stock(
    body: Adjustment,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """A correction with a reason; never below zero (409 `insufficient_stock`)."""

    async def work() -> Movement:
        entry = await _book(session, principal).adjust(
            body.location_id, body.lot_id, body.quantity, reason=body.reason
        )
        await _audited(
            resources, principal, request, "pharmacy:adjust", "PharmacyLedgerEntry", entry.id
        )
        return Movement(entries=[entry_out(entry)])

    return await _movement(principal, idempotency, body, response, work)


@router.post("/stock/transfers", status_code=201, response_model=Movement, responses=_WRITE)
async def transfer_pharmacy_stock(
    body: Transfer,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """Move a lot's stock between locations (two ledger rows, one transaction)."""

    async def work() -> Movement:
        out, into = await _book(session, principal).transfer(
            body.from_location_id,
            body.to_location_id,
            body.lot_id,
            body.quantity,
            reference=body.reference,
        )
        await _audited(
            resources, principal, request, "pharmacy:transfer", "PharmacyLedgerEntry", out.id
        )
        return Movement(entries=[entry_out(out), entry_out(into)])

    return await _movement(principal, idempotency, body, response, work)


@router.post("/stock/counts", status_code=201, response_model=Movement, responses=_WRITE)
async def count_pharmacy_stock(
    body: Count,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """A physical count: the balance becomes what was counted; a difference is a discrepancy
    (the row's `quantity`, in the discrepancy report)."""

    async def work() -> Movement:
        entry = await _book(session, principal).count(body.location_id, body.lot_id, body.counted)
        await _audited(
            resources,
            principal,
            request,
            "pharmacy:count",
            "PharmacyLedgerEntry",
            entry.id,
            {"discrepancy": entry.quantity != 0},
        )
        return Movement(entries=[entry_out(entry)])

    return await _movement(principal, idempotency, body, response, work)


@router.post("/stock/waste", status_code=201, response_model=Movement, responses=_WRITE)
async def waste_pharmacy_stock(
    body: Waste,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """Stock destroyed, with a reason. A scheduled product needs `witness`: a pharmacist or
    nurse other than the caller, signing in here (password, and TOTP code when enrolled)."""

    async def work() -> Movement:
        witness = None
        if body.witness is not None:
            witness = await authenticate_witness(
                resources.sessionmaker,
                resources.settings,
                tenant=principal.tenant,
                caller_user_id=principal.subject if principal.kind == "user" else None,
                username=body.witness.username,
                password=body.witness.password,
                code=body.witness.code,
            )
        entry = await _book(session, principal).waste(
            body.location_id,
            body.lot_id,
            body.quantity,
            reason=body.reason,
            witness=witness,
            reference=body.reference,
        )
        await _audited(
            resources,
            principal,
            request,
            "pharmacy:waste",
            "PharmacyLedgerEntry",
            entry.id,
            {"witnessed": witness is not None},
        )
        return Movement(entries=[entry_out(entry)])

    return await _movement(principal, idempotency, body, response, work)


@router.post("/stock/returns", status_code=201, response_model=Movement, responses=_WRITE)
async def return_pharmacy_stock(
    body: Return,
    principal: Stocker,
    session: SessionDep,
    resources: ResourcesDep,
    idempotency: IdempotencyDep,
    request: Request,
    response: Response,
) -> Any:
    """Stock returned to the shelf (unopened, into a lot that may still be dispensed)."""

    async def work() -> Movement:
        entry = await _book(session, principal).put_back(
            body.location_id, body.lot_id, body.quantity, reference=body.reference
        )
        await _audited(
            resources, principal, request, "pharmacy:return", "PharmacyLedgerEntry", entry.id
        )
        return Movement(entries=[entry_out(entry)])

    return await _movement(principal, idempotency, body, response, work)


# --- the controlled-substance record ---------------------------------------------------------


@router.get("/ledger", response_model=LedgerList, responses=problem_responses(401, 403, 422, 503))
async def list_pharmacy_ledger(
    principal: Manager,
    session: SessionDep,
    product_id: uuid.UUID | None = None,
    lot_id: uuid.UUID | None = None,
    controlled: Annotated[bool, Query(description="Only scheduled products.")] = False,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LedgerList:
    """Ledger rows in chain order (page with `after_seq`)."""
    rows = await reports.ledger_page(
        session,
        principal.tenant_id,
        product_id=product_id,
        lot_id=lot_id,
        controlled=controlled,
        after_seq=after_seq,
        limit=limit,
    )
    return LedgerList(
        items=[entry_out(row) for row in rows],
        next_after_seq=rows[-1].seq if len(rows) == limit else None,
    )


@router.get(
    "/ledger/verification",
    response_model=LedgerVerificationOut,
    responses=problem_responses(401, 403, 503),
)
async def verify_pharmacy_ledger(principal: Manager, session: SessionDep) -> LedgerVerificationOut:
    """Recompute the tenant's ledger hash chain: every break (an edited, missing or reordered
    row) with its `seq`."""
    result = await ledger.verify(session, principal.tenant_id)
    return LedgerVerificationOut(
        intact=result.intact,
        entries=result.entries,
        head_hash=result.head_hash,
        breaks=[{"seq": b.seq, "problem": b.problem} for b in result.breaks],
    )


@router.get(
    "/controlled/discrepancies",
    response_model=DiscrepancyList,
    responses=problem_responses(401, 403, 422, 503),
)
async def list_pharmacy_discrepancies(
    principal: Manager,
    session: SessionDep,
    since: datetime | None = None,
    controlled_only: bool = True,
) -> DiscrepancyList:
    """Counts that disagreed with the ledger: expected, counted, the difference."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = await reports.discrepancies(
        session, principal.tenant_id, since=since, controlled_only=controlled_only
    )
    return DiscrepancyList(items=[discrepancy_out(*row) for row in rows])


@router.get(
    "/controlled/inventory",
    response_model=InventoryReport,
    responses=problem_responses(401, 403, 422, 503),
)
async def pharmacy_controlled_inventory(
    principal: Manager,
    session: SessionDep,
    at: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> InventoryReport:
    """Every scheduled lot's balance per location as the ledger stood at `at` (what a biennial
    inventory is taken from and compared with)."""
    when = at or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    rows = await reports.inventory_at(session, principal.tenant_id, when)
    return InventoryReport(at=when, items=[inventory_line_out(*row) for row in rows])
