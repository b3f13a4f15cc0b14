"""Pharmacy stock against the real PostgreSQL, through the API where a user would (ADR 0034).

Checked: FEFO picking skips expired and recalled lots and spans lots; fifty concurrent
dispenses of ten units — exactly ten succeed and the ledger balances; counts and their
discrepancy report; the inventory at a point in time; witnessed waste (who may witness, and
who not); bad input refused with stable codes and nothing written; an Idempotency-Key replay
books nothing twice; the ledger's hash chain verifies, and an edited or removed row is found —
by the API and by ``ehr pharmacy ledger verify``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from support.database import Sessions, open_sessions
from support.in_process import serve
from support.tenant_world import TenantWorld, World, open_world
from support.throwaway_schema import throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import EventOutbox, PharmacyLedgerEntry, PharmacyLot, PharmacyStock, User
from ehr.core.errors import ConflictError
from ehr.entrypoints.api import create_app
from ehr.modules import pharmacy
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for

pytestmark = pytest.mark.integration

EHR = str(Path(sys.executable).parent / "ehr")
PASSWORD = "Seven-Brass-Lanterns-Hum-81"
# From the shipped RxNorm table: oxycodone 5 mg tablet (CII) and lisinopril 10 mg tablet.
OXYCODONE = {"ndc11": "00378611201", "rxcui": "1049621", "name": "oxycodone HCl 5 MG Oral Tablet"}
LISINOPRIL = {"ndc11": "00093111310", "rxcui": "314076", "name": "lisinopril 10 MG Oral Tablet"}
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "pharm") as local:
        yield local


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def world(schema_settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(schema_settings, run_id, ["rxa", "rxb"]) as made:
        yield made


@pytest.fixture(scope="module")
async def api(schema_settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    del world
    async with serve(create_app(schema_settings)) as made:
        yield made


@pytest.fixture(scope="module")
def tenant(world: World) -> TenantWorld:
    return world.tenants["rxa"]


async def person(world: World, tenant: TenantWorld, role: Role) -> tuple[User, dict[str, str]]:
    """A user with a known password (a witness signs in) and their bearer header."""
    async with world.sessionmaker() as session, session.begin():
        user = await create_user(
            session,
            tenant_id=tenant.tenant_id,
            username=f"{role.value}.{uuid.uuid4().hex[:8]}",
            password=PASSWORD,
            roles=[role.value],
            granted_by="test",
            settings=world.settings,
        )
        token = await issue_access_token_for(session, world.settings, user)
    return user, {"Authorization": f"Bearer {token}"}


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any], headers: Any) -> Any:
    answer = await api.post(path, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
async def stock(api: httpx.AsyncClient, tenant: TenantWorld) -> dict[str, str]:
    """Two locations and the two products, registered by the tenant's pharmacist."""
    pharmacist = tenant.auth(Role.PHARMACIST)
    main = await created(
        api, "/api/pharmacy/locations", {"code": "MAIN", "name": "Main pharmacy"}, pharmacist
    )
    ward = await created(
        api, "/api/pharmacy/locations", {"code": "4W", "name": "Ward 4 West"}, pharmacist
    )
    oxy = await created(
        api,
        "/api/pharmacy/products",
        {**OXYCODONE, "unit": "{tbl}", "reorder_level": 5},
        pharmacist,
    )
    lis = await created(api, "/api/pharmacy/products", {**LISINOPRIL, "unit": "{tbl}"}, pharmacist)
    assert oxy["schedule"] == "CII"  # derived: oxycodone is schedule II
    assert lis["schedule"] is None
    return {"main": main["id"], "ward": ward["id"], "oxy": oxy["id"], "lis": lis["id"]}


def book(world: World, session: Any, tenant: TenantWorld) -> pharmacy.StockBook:
    return pharmacy.StockBook(
        session,
        tenant_id=tenant.tenant_id,
        tenant=tenant.slug,
        actor=f"user:{tenant.users[Role.PHARMACIST]}",
    )


async def receive(
    api: httpx.AsyncClient,
    tenant: TenantWorld,
    stock: dict[str, str],
    *,
    product: str = "oxy",
    location: str = "main",
    lot: str | None = None,
    days: int = 365,
    quantity: int = 10,
) -> dict[str, Any]:
    body = {
        "location_id": stock[location],
        "product_id": stock[product],
        "lot_number": lot or f"L{uuid.uuid4().hex[:8].upper()}",
        "expires_on": (TODAY + timedelta(days=days)).isoformat(),
        "quantity": quantity,
    }
    moved = await created(
        api, "/api/pharmacy/stock/receipts", body, tenant.auth(Role.PHARMACY_TECHNICIAN)
    )
    (entry,) = moved["entries"]
    return dict(entry)


async def on_hand(sessions: Sessions, lot_id: str, location_id: str) -> Decimal:
    async with sessions() as session:
        found = await session.scalar(
            select(PharmacyStock.quantity).where(
                PharmacyStock.lot_id == uuid.UUID(lot_id),
                PharmacyStock.location_id == uuid.UUID(location_id),
            )
        )
    return Decimal(found) if found is not None else Decimal(0)


async def verification(api: httpx.AsyncClient, tenant: TenantWorld) -> dict[str, Any]:
    answer = await api.get(
        "/api/pharmacy/ledger/verification", headers=tenant.auth(Role.PHARMACIST)
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# --- FEFO ------------------------------------------------------------------------------------


async def test_fefo_skips_expired_and_recalled_lots_and_spans_lots(
    world: World,
    sessions: Sessions,
    api: httpx.AsyncClient,
    tenant: TenantWorld,
    stock: dict[str, str],
) -> None:
    # Lisinopril at the ward: four lots; two days from now D has expired and C is recalled.
    d = await receive(api, tenant, stock, product="lis", location="ward", days=1, quantity=3)
    c = await receive(api, tenant, stock, product="lis", location="ward", days=5, quantity=5)
    a = await receive(api, tenant, stock, product="lis", location="ward", days=10, quantity=5)
    b = await receive(api, tenant, stock, product="lis", location="ward", days=100, quantity=20)
    recalled = await api.post(
        f"/api/pharmacy/lots/{c['lot_id']}/recall",
        json={"reason": "Manufacturer recall"},
        headers=tenant.auth(Role.PHARMACIST),
    )
    assert recalled.status_code == 200, recalled.text
    assert recalled.json()["recalled_at"] is not None

    async with sessions() as session, session.begin():
        picked = await book(world, session, tenant).take(
            uuid.UUID(stock["ward"]),
            uuid.UUID(stock["lis"]),
            Decimal(7),
            reference="MedicationDispense/fefo-test",
            today=TODAY + timedelta(days=2),
        )
    assert [(str(p.lot.id), p.quantity) for p in picked] == [
        (a["lot_id"], Decimal(5)),
        (b["lot_id"], Decimal(2)),
    ]
    assert [p.entry.kind for p in picked] == ["dispense", "dispense"]
    assert await on_hand(sessions, a["lot_id"], stock["ward"]) == 0
    assert await on_hand(sessions, b["lot_id"], stock["ward"]) == 18
    assert await on_hand(sessions, d["lot_id"], stock["ward"]) == 3  # expired: untouched
    assert await on_hand(sessions, c["lot_id"], stock["ward"]) == 5  # recalled: untouched

    # More than the dispensable stock: refused, nothing written.
    before = await verification(api, tenant)
    with pytest.raises(ConflictError) as refused:
        async with sessions() as session, session.begin():
            await book(world, session, tenant).take(
                uuid.UUID(stock["ward"]),
                uuid.UUID(stock["lis"]),
                Decimal(19),
                reference="MedicationDispense/too-much",
                today=TODAY + timedelta(days=2),
            )
    assert refused.value.code == "insufficient_stock"
    assert (await verification(api, tenant))["entries"] == before["entries"]

    # A recalled lot cannot be returned to the shelf either.
    back = await api.post(
        "/api/pharmacy/stock/returns",
        json={"location_id": stock["ward"], "lot_id": c["lot_id"], "quantity": 1},
        headers=tenant.auth(Role.PHARMACIST),
    )
    assert back.status_code == 409
    assert back.json()["code"] == "lot_recalled"


async def test_fifty_concurrent_dispenses_of_ten_units_exactly_ten_succeed(
    world: World,
    sessions: Sessions,
    api: httpx.AsyncClient,
    tenant: TenantWorld,
    stock: dict[str, str],
) -> None:
    lot = await receive(api, tenant, stock, location="ward", quantity=10)

    async def dispense(n: int) -> bool:
        try:
            async with sessions() as session, session.begin():
                await book(world, session, tenant).take(
                    uuid.UUID(stock["ward"]),
                    uuid.UUID(stock["oxy"]),
                    Decimal(1),
                    reference=f"MedicationDispense/race-{n}",
                )
        except ConflictError as refused:
            return refused.code != "insufficient_stock"  # any other refusal fails the count
        return True

    outcomes = await asyncio.gather(*(dispense(n) for n in range(50)))
    assert sum(outcomes) == 10
    assert await on_hand(sessions, lot["lot_id"], stock["ward"]) == 0
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(PharmacyLedgerEntry)
                .where(PharmacyLedgerEntry.lot_id == uuid.UUID(lot["lot_id"]))
                .order_by(PharmacyLedgerEntry.seq)
            )
        )
    assert [r.kind for r in rows] == ["receive"] + ["dispense"] * 10
    assert sum(r.quantity for r in rows) == 0  # the ledger balances
    assert [r.balance_after for r in rows] == [Decimal(10 - n) for n in range(11)]
    assert (await verification(api, tenant))["intact"] is True


# --- counts, reports, transfers -----------------------------------------------------------------


async def test_a_count_that_disagrees_is_a_discrepancy_and_the_inventory_follows_the_ledger(
    api: httpx.AsyncClient, tenant: TenantWorld, stock: dict[str, str]
) -> None:
    pharmacist = tenant.auth(Role.PHARMACIST)
    technician = tenant.auth(Role.PHARMACY_TECHNICIAN)
    lot = await receive(api, tenant, stock, quantity=30)
    moved = await created(
        api,
        "/api/pharmacy/stock/transfers",
        {
            "from_location_id": stock["main"],
            "to_location_id": stock["ward"],
            "lot_id": lot["lot_id"],
            "quantity": 12,
        },
        technician,
    )
    assert [(e["kind"], e["quantity"], e["balance_after"]) for e in moved["entries"]] == [
        ("transfer_out", "-12.000", "18.000"),
        ("transfer_in", "12.000", "12.000"),
    ]
    before_count = datetime.now(UTC)
    counted = await created(
        api,
        "/api/pharmacy/stock/counts",
        {"location_id": stock["main"], "lot_id": lot["lot_id"], "counted": 17},
        technician,
    )
    assert counted["entries"][0]["quantity"] == "-1.000"  # one tablet short
    agreed = await created(
        api,
        "/api/pharmacy/stock/counts",
        {"location_id": stock["ward"], "lot_id": lot["lot_id"], "counted": 12},
        technician,
    )
    assert agreed["entries"][0]["quantity"] == "0.000"

    found = await api.get("/api/pharmacy/controlled/discrepancies", headers=pharmacist)
    assert found.status_code == 200, found.text
    mine = [d for d in found.json()["items"] if d["entry"]["lot_id"] == lot["lot_id"]]
    assert [(d["location"], d["expected"], d["counted"]) for d in mine] == [
        ("MAIN", "18.000", "17.000")
    ]

    def lines(report: dict[str, Any]) -> dict[str, str]:
        return {
            line["location"]: line["quantity"]
            for line in report["items"]
            if line["lot_number"] == mine[0]["lot_number"]
        }

    now = await api.get("/api/pharmacy/controlled/inventory", headers=pharmacist)
    assert lines(now.json()) == {"MAIN": "17.000", "4W": "12.000"}
    earlier = await api.get(
        "/api/pharmacy/controlled/inventory",
        params={"at": before_count.isoformat()},
        headers=pharmacist,
    )
    assert lines(earlier.json()) == {"MAIN": "18.000", "4W": "12.000"}


# --- waste and its witness ------------------------------------------------------------------


async def test_controlled_waste_needs_another_pharmacist_or_nurse_signing_in(
    world: World, api: httpx.AsyncClient, tenant: TenantWorld, stock: dict[str, str]
) -> None:
    caller, caller_headers = await person(world, tenant, Role.PHARMACIST)
    nurse, _ = await person(world, tenant, Role.NURSE)
    technician, _ = await person(world, tenant, Role.PHARMACY_TECHNICIAN)
    lot = await receive(api, tenant, stock, quantity=4)
    body = {"location_id": stock["main"], "lot_id": lot["lot_id"], "quantity": 1}
    path = "/api/pharmacy/stock/waste"

    async def attempt(witness: dict[str, Any] | None) -> httpx.Response:
        document = {**body, "reason": "Dropped tablet"}
        if witness is not None:
            document["witness"] = witness
        return await api.post(path, json=document, headers=caller_headers)

    refusals = {
        "none": await attempt(None),
        "self": await attempt({"username": caller.username, "password": PASSWORD}),
        "technician": await attempt({"username": technician.username, "password": PASSWORD}),
        "wrong password": await attempt({"username": nurse.username, "password": "not-it"}),
        "unknown": await attempt({"username": "nobody.here", "password": PASSWORD}),
    }
    codes = {name: (r.status_code, r.json().get("code")) for name, r in refusals.items()}
    assert codes == {
        "none": (422, "witness_required"),
        "self": (422, "witness_invalid"),
        "technician": (422, "witness_invalid"),
        "wrong password": (422, "witness_invalid"),
        "unknown": (422, "witness_invalid"),
    }
    for answer in refusals.values():
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "www-authenticate" not in answer.headers  # the caller's session is fine
    witnessed = await attempt({"username": nurse.username, "password": PASSWORD})
    assert witnessed.status_code == 201, witnessed.text
    (entry,) = witnessed.json()["entries"]
    assert (entry["kind"], entry["quantity"], entry["witness"]) == (
        "waste",
        "-1.000",
        f"user:{nurse.id}",
    )
    assert entry["actor"] == f"user:{caller.id}"

    # Unscheduled stock: a reason is enough.
    plain = await receive(api, tenant, stock, product="lis", quantity=2)
    wasted = await api.post(
        path,
        json={
            "location_id": stock["main"],
            "lot_id": plain["lot_id"],
            "quantity": 1,
            "reason": "Damaged blister",
        },
        headers=tenant.auth(Role.PHARMACY_TECHNICIAN),
    )
    assert wasted.status_code == 201, wasted.text


# --- bad input, roles, idempotency ------------------------------------------------------------


async def test_bad_input_is_refused_with_stable_codes_and_nothing_written(
    api: httpx.AsyncClient, tenant: TenantWorld, stock: dict[str, str], sessions: Sessions
) -> None:
    technician = tenant.auth(Role.PHARMACY_TECHNICIAN)
    pharmacist = tenant.auth(Role.PHARMACIST)
    lot = await receive(api, tenant, stock, quantity=3)
    entries = (await verification(api, tenant))["entries"]
    cases = {
        "half a tablet": (
            "/api/pharmacy/stock/receipts",
            {
                "location_id": stock["main"],
                "product_id": stock["oxy"],
                "lot_number": "LHALF",
                "expires_on": (TODAY + timedelta(days=90)).isoformat(),
                "quantity": "0.5",
            },
            422,
            "quantity_not_allowed",
        ),
        "negative": (
            "/api/pharmacy/stock/transfers",
            {
                "from_location_id": stock["main"],
                "to_location_id": stock["ward"],
                "lot_id": lot["lot_id"],
                "quantity": -1,
            },
            422,
            "validation_failed",
        ),
        "more than there is": (
            "/api/pharmacy/stock/adjustments",
            {"location_id": stock["main"], "lot_id": lot["lot_id"], "quantity": -4, "reason": "x"},
            409,
            "insufficient_stock",
        ),
        "expired stock": (
            "/api/pharmacy/stock/receipts",
            {
                "location_id": stock["main"],
                "product_id": stock["oxy"],
                "lot_number": "LOLD",
                "expires_on": (TODAY - timedelta(days=1)).isoformat(),
                "quantity": 5,
            },
            409,
            "lot_expired",
        ),
        "a lot with another expiry": (
            "/api/pharmacy/stock/receipts",
            {
                "location_id": stock["main"],
                "product_id": stock["oxy"],
                "lot_number": (await lot_number(sessions, lot["lot_id"])),
                "expires_on": (TODAY + timedelta(days=10)).isoformat(),
                "quantity": 5,
            },
            409,
            "pharmacy_lot_conflict",
        ),
        "another tenant's lot": (
            "/api/pharmacy/stock/counts",
            {"location_id": stock["main"], "lot_id": str(uuid.uuid4()), "counted": 1},
            404,
            "pharmacy_lot_not_found",
        ),
    }
    for name, (path, body, status, code) in cases.items():
        answer = await api.post(path, json=body, headers=technician)
        assert (answer.status_code, answer.json().get("code")) == (status, code), name
        assert answer.headers["content-type"].startswith("application/problem+json"), name
    assert (await verification(api, tenant))["entries"] == entries
    assert await on_hand(sessions, lot["lot_id"], stock["main"]) == 3

    mismatch = await api.post(
        "/api/pharmacy/products",
        json={**OXYCODONE, "ndc11": LISINOPRIL["ndc11"], "unit": "{tbl}"},
        headers=pharmacist,
    )
    assert (mismatch.status_code, mismatch.json()["code"]) == (422, "ndc_not_the_product")
    taken = await api.post(
        "/api/pharmacy/products", json={**LISINOPRIL, "unit": "{tbl}"}, headers=pharmacist
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "pharmacy_product_exists")


async def lot_number(sessions: Sessions, lot_id: str) -> str:
    async with sessions() as session:
        found = await session.get(PharmacyLot, uuid.UUID(lot_id))
    assert found is not None
    return found.lot_number


async def test_who_may_do_what(
    api: httpx.AsyncClient, world: World, tenant: TenantWorld, stock: dict[str, str]
) -> None:
    receipt = {
        "location_id": stock["main"],
        "product_id": stock["lis"],
        "lot_number": "LROLE",
        "expires_on": (TODAY + timedelta(days=90)).isoformat(),
        "quantity": 1,
    }
    product = {**LISINOPRIL, "ndc11": "99999999999", "unit": "{tbl}"}
    for role, path, body, allowed in (
        (Role.PHARMACY_TECHNICIAN, "/api/pharmacy/products", product, False),
        (Role.NURSE, "/api/pharmacy/stock/receipts", receipt, False),
        (Role.PHYSICIAN, "/api/pharmacy/stock/receipts", receipt, False),
        (Role.ADMIN, "/api/pharmacy/stock/receipts", receipt, False),
    ):
        answer = await api.post(path, json=body, headers=tenant.auth(role))
        assert (answer.status_code == 403) != allowed, (role, path, answer.text)
    ledger = await api.get("/api/pharmacy/ledger", headers=tenant.auth(Role.PHARMACY_TECHNICIAN))
    assert ledger.status_code == 403
    # Another tenant sees none of this tenant's stock.
    other = world.tenants["rxb"].auth(Role.PHARMACIST)
    assert (await api.get("/api/pharmacy/stock", headers=other)).json()["items"] == []
    count = await api.post(
        "/api/pharmacy/stock/counts",
        json={"location_id": stock["main"], "lot_id": str(uuid.uuid4()), "counted": 0},
        headers=other,
    )
    assert count.status_code == 404


async def test_a_retried_receipt_with_its_idempotency_key_books_once(
    api: httpx.AsyncClient, tenant: TenantWorld, stock: dict[str, str], sessions: Sessions
) -> None:
    body = {
        "location_id": stock["main"],
        "product_id": stock["lis"],
        "lot_number": f"LIDEM{uuid.uuid4().hex[:6].upper()}",
        "expires_on": (TODAY + timedelta(days=200)).isoformat(),
        "quantity": 50,
    }
    headers = {**tenant.auth(Role.PHARMACY_TECHNICIAN), "Idempotency-Key": uuid.uuid4().hex}
    first = await api.post("/api/pharmacy/stock/receipts", json=body, headers=headers)
    again = await api.post("/api/pharmacy/stock/receipts", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    lot_id = first.json()["entries"][0]["lot_id"]
    assert await on_hand(sessions, lot_id, stock["main"]) == 50


# --- the hash chain ---------------------------------------------------------------------------


async def _tamper(settings: Settings, sessions: Sessions, statement: str, entry_id: str) -> None:
    """Edit the ledger behind the application's back (its trigger switched off)."""
    schema = settings.db.app_schema
    async with sessions() as session, session.begin():
        await session.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        await session.execute(
            text("ALTER TABLE pharmacy_ledger DISABLE TRIGGER pharmacy_ledger_append_only")
        )
        await session.execute(text(statement), {"id": entry_id})
        await session.execute(
            text("ALTER TABLE pharmacy_ledger ENABLE TRIGGER pharmacy_ledger_append_only")
        )


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {**os.environ, "EHR_DB__APP_SCHEMA": settings.db.app_schema, "EHR_LOG__LEVEL": "ERROR"}
    process = await asyncio.create_subprocess_exec(
        EHR,
        "pharmacy",
        "ledger",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return int(process.returncode or 0), output.decode()


async def test_the_ledger_is_append_only_and_a_tampered_row_is_found(
    api: httpx.AsyncClient,
    world: World,
    schema_settings: Settings,
    sessions: Sessions,
) -> None:
    tenant = world.tenants["rxb"]  # a chain of its own
    pharmacist = tenant.auth(Role.PHARMACIST)
    location = await created(
        api, "/api/pharmacy/locations", {"code": "MAIN", "name": "Main"}, pharmacist
    )
    product = await created(
        api, "/api/pharmacy/products", {**OXYCODONE, "unit": "{tbl}"}, pharmacist
    )
    local = {"main": location["id"], "oxy": product["id"]}
    entries = [await receive(api, tenant, local, quantity=q) for q in (10, 20, 30)]
    assert await verification(api, tenant) == {
        "intact": True,
        "entries": 3,
        "head_hash": entries[-1]["hash"],
        "breaks": [],
    }
    status, output = await _cli(schema_settings, "verify", "--tenant", tenant.slug)
    assert status == 0, output
    assert f"{tenant.slug}: 3 entries, intact" in output

    # The application's role cannot edit it.
    with pytest.raises(Exception, match="append-only"):
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    f'UPDATE "{schema_settings.db.app_schema}".pharmacy_ledger '  # noqa: S608
                    "SET quantity = 11 WHERE id = :id"
                ),
                {"id": entries[0]["id"]},
            )

    await _tamper(
        schema_settings,
        sessions,
        "UPDATE pharmacy_ledger SET quantity = 12, balance_after = 12 WHERE id = :id",
        entries[0]["id"],
    )
    broken = await verification(api, tenant)
    assert broken["intact"] is False
    assert broken["breaks"] == [{"seq": 1, "problem": "hash_mismatch"}]
    status, output = await _cli(schema_settings, "verify", "--tenant", tenant.slug)
    assert status == 1, output
    assert "BROKEN" in output
    assert "seq 1: hash_mismatch" in output

    await _tamper(
        schema_settings, sessions, "DELETE FROM pharmacy_ledger WHERE id = :id", entries[1]["id"]
    )
    problems = {(b["seq"], b["problem"]) for b in (await verification(api, tenant))["breaks"]}
    assert {(1, "hash_mismatch"), (3, "seq_gap"), (3, "prev_hash_mismatch")} <= problems

    # The export names every row of the controlled product in chain order.
    status, output = await _cli(schema_settings, "export", "--tenant", tenant.slug)
    assert status == 0, output
    lines = output.strip().splitlines()
    assert lines[0].startswith("seq,occurred_at,kind")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "3"]
    async with sessions() as session:
        remaining = await session.scalar(
            select(func.count()).where(PharmacyLedgerEntry.tenant_id == tenant.tenant_id)
        )
    assert remaining == 2


async def test_near_expiry_and_low_stock_are_raised_as_events(
    api: httpx.AsyncClient, tenant: TenantWorld, stock: dict[str, str], sessions: Sessions
) -> None:
    soon = await receive(api, tenant, stock, product="lis", days=10, quantity=4)
    assert await pharmacy.raise_expiry_alerts(sessions, 30) >= 1
    assert await pharmacy.raise_expiry_alerts(sessions, 30) == 0  # once per lot
    # Oxycodone's reorder level is 5: a waste leaving 4 at the location raises stock_low.
    location = await created(
        api,
        "/api/pharmacy/locations",
        {"code": f"CAB{uuid.uuid4().hex[:4]}", "name": "Cabinet"},
        tenant.auth(Role.PHARMACIST),
    )
    local = {**stock, "cab": location["id"]}
    oxy = await receive(api, tenant, local, location="cab", quantity=6)
    technician = tenant.auth(Role.PHARMACY_TECHNICIAN)
    await created(
        api,
        "/api/pharmacy/stock/adjustments",
        {
            "location_id": location["id"],
            "lot_id": oxy["lot_id"],
            "quantity": -2,
            "reason": "Broken",
        },
        technician,
    )
    async with sessions() as session:
        found = {
            (row.type, row.payload["data"].get("lot") or row.payload["data"].get("location"))
            for row in await session.scalars(
                select(EventOutbox).where(
                    EventOutbox.tenant == tenant.slug,
                    EventOutbox.type.in_(["medication.lot_near_expiry", "medication.stock_low"]),
                )
            )
        }
    assert ("medication.lot_near_expiry", soon["lot_id"]) in found
    assert ("medication.stock_low", location["code"]) in found
