"""The pharmacy's queue, dispensing and its concurrency, side by side in one run (issue 21, 7).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/pharmacy.py \
        [--rounds 5] [--calls 20] [--orders 1000]

Setup (idempotent, kept between runs): the tenant ``bench-pharmacy``, a pharmacist, one Patient
tagged ``urn:ehr:bench|pharmacy`` with ``--orders`` active MedicationRequests (HAPI) in the
verification queue (projected as the change feed does), a location and a product with stock.
The API runs as production starts it (``ehr serve``, one worker, warnings only).

1. Queue page: ``GET /api/pharmacy/queue?limit=50`` against one direct HAPI search of the same
   orders (``MedicationRequest?_tag=…&status=active&_count=50``), interleaved per round.
   Target: queue p95 / direct p95 ≤ 2.
2. Dispense: ``POST /api/pharmacy/orders/{id}/dispenses`` of one unit (approved orders; FEFO
   pick, ledger rows, MedicationDispense in HAPI, audit) against a direct HAPI create of the same
   MedicationDispense: p50/p95 and the ratio.
3. Fifty concurrent dispenses of one unit against a lot holding ten: how many succeed (must be
   exactly 10), the others' status codes, the ledger's balance and chain afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).parent))

from fhir_gateway import _free_port, api_subprocess, pct, wait_ready
from order_sets import _machine

from ehr.core.config import LogSettings, Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import PharmacyStock, PharmacyVerification, User
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient, TenantFhirClient, transaction_bundle
from ehr.modules import pharmacy
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant

TAG = {"system": "urn:ehr:bench", "code": "pharmacy"}
SLUG = "bench-pharmacy"
USERNAME = "bench.pharmacist"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
IBUPROFEN = {"ndc11": "00615831039", "rxcui": "197806", "name": "ibuprofen 600 MG Oral Tablet"}


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings.db)
        self.sessions = create_sessionmaker(self.engine)
        self.tenant_id: Any = None
        self.user_id: Any = None

    async def ensure(self, fhir: FhirClient) -> None:
        async with self.sessions() as session, session.begin():
            tenant, _ = await create_tenant(session, fhir, slug=SLUG, name="Benchmark pharmacy")
            user = await session.scalar(
                select(User).where(User.tenant_id == tenant.id, User.username == USERNAME)
            )
            if user is None:
                user = await create_user(
                    session,
                    tenant_id=tenant.id,
                    username=USERNAME,
                    password="-".join(secrets.token_urlsafe(6) for _ in range(4)),
                    roles=["pharmacist"],
                    granted_by="benchmark",
                    settings=self.settings,
                )
            self.tenant_id, self.user_id = tenant.id, user.id

    async def token(self) -> str:
        async with self.sessions() as session, session.begin():
            user = await session.get(User, self.user_id)
            assert user is not None
            return await issue_access_token_for(session, self.settings, user)


def _order(patient_id: str, n: int, quantity: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "meta": {"tag": [TAG]},
        "status": "active",
        "intent": "order",
        "priority": ("stat", "urgent", "routine", "routine")[n % 4],
        "authoredOn": (datetime.now(UTC) - timedelta(minutes=n)).isoformat(),
        "subject": {"reference": f"Patient/{patient_id}"},
        "requester": {"identifier": {"system": "urn:ehr:user", "value": "bench"}},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": IBUPROFEN["rxcui"], "display": IBUPROFEN["name"]}]
        },
        "dispenseRequest": {
            "quantity": {"value": quantity, "unit": "{tbl}"},
            "numberOfRepeatsAllowed": 0,
        },
    }


async def _patient(fhir: TenantFhirClient) -> str:
    found = await fhir.search("Patient", [("_tag", f"{TAG['system']}|{TAG['code']}")])
    for entry in found.get("entry") or []:
        return str(entry["resource"]["id"])
    created = await fhir.create(
        {"resourceType": "Patient", "meta": {"tag": [TAG]}, "name": [{"family": "Zzbenchrx"}]}
    )
    return str(created["id"])


async def _project(bench: Bench, fhir: TenantFhirClient, ids: list[str]) -> None:
    for start in range(0, len(ids), 100):
        found = await fhir.search(
            "MedicationRequest", [("_id", ",".join(ids[start : start + 100])), ("_count", "100")]
        )
        async with bench.sessions() as session, session.begin():
            for entry in found.get("entry") or []:
                await pharmacy.verification.project(
                    session, bench.tenant_id, SLUG, entry["resource"]
                )


async def _orders(
    bench: Bench, fhir: TenantFhirClient, patient_id: str, count: int, quantity: int
) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 200):
        answer = await fhir.transaction(
            transaction_bundle(
                [
                    {
                        "resource": _order(patient_id, n, quantity),
                        "request": {"method": "POST", "url": "MedicationRequest"},
                    }
                    for n in range(start, min(count, start + 200))
                ]
            )
        )
        for entry in answer.get("entry") or []:
            location = str((entry.get("response") or {}).get("location") or "")
            ids.append(location.split("/")[1])
    await _project(bench, fhir, ids)
    return ids


async def _approve(bench: Bench, ids: list[str]) -> None:
    async with bench.sessions() as session, session.begin():
        await session.execute(
            update(PharmacyVerification)
            .where(PharmacyVerification.medication_request_id.in_(ids))
            .values(state="approved", decided_by="benchmark", decided_at=datetime.now(UTC))
        )


async def _stock(bench: Bench, code: str, quantity: int) -> tuple[str, str]:
    """A location of its own with ``quantity`` of one lot; the product (created once)."""
    async with bench.sessions() as session, session.begin():
        products = await pharmacy.catalog.list_products(session, bench.tenant_id)
        product = next((p for p in products if p.ndc11 == IBUPROFEN["ndc11"]), None)
        if product is None:
            from ehr.modules.medication_safety import get_knowledge

            product = await pharmacy.catalog.register_product(
                session,
                bench.tenant_id,
                pharmacy.catalog.CodeResolver(get_knowledge().resolver),
                unit="{tbl}",
                divisible=False,
                schedule=None,
                reorder_level=Decimal(0),
                actor="benchmark",
                **IBUPROFEN,
            )
        location = await pharmacy.catalog.register_location(
            session, bench.tenant_id, code=code, name=code, actor="benchmark"
        )
        book = pharmacy.StockBook(
            session, tenant_id=bench.tenant_id, tenant=SLUG, actor="benchmark"
        )
        await book.receive(
            location.id,
            product.id,
            lot_number=f"B{uuid.uuid4().hex[:8]}",
            expires_on=(datetime.now(UTC) + timedelta(days=365)).date(),
            quantity=Decimal(quantity),
        )
        return str(location.id), str(product.id)


async def _timed(call: Any) -> tuple[float, int]:
    started = time.perf_counter()
    response = await call()
    return (time.perf_counter() - started) * 1000, response.status_code


def _summary(name: str, rounds: list[list[float]]) -> tuple[float, float]:
    p50 = statistics.median(pct(r, 50) for r in rounds)
    p95s = [pct(r, 95) for r in rounds]
    print(
        f"   {name:<10} p50 {p50:7.1f} ms   p95 {statistics.median(p95s):7.1f} ms "
        f"({min(p95s):.1f}..{max(p95s):.1f})"
    )
    return p50, statistics.median(p95s)


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    bench = Bench(settings)
    print(f"machine: {_machine()}")
    print(f"command: {shlex.join(sys.argv)}")
    async with FhirClient(settings.fhir) as fhir:
        await bench.ensure(fhir)
        tenant = fhir.for_tenant(SLUG)
        patient_id = await _patient(tenant)
        async with bench.sessions() as session:
            queued = len(
                await pharmacy.verification.queue_page(session, bench.tenant_id, limit=100_000)
            )
        if queued < args.orders:
            print(f"setup: {args.orders - queued} orders into HAPI and the queue …")
            await _orders(bench, tenant, patient_id, args.orders - queued, 1)
        hapi = f"{settings.fhir.base_url.rstrip('/')}/{SLUG}"
        port = _free_port()
        log = Path(tempfile.gettempdir()) / f"bench-pharmacy-api-{port}.log"
        with api_subprocess(port, 1, log) as process:
            api = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_ready(http, api, process, 1)
                headers = {"authorization": f"Bearer {await bench.token()}"}
                tag = f"{TAG['system']}|{TAG['code']}"

                async def queue() -> httpx.Response:
                    return await http.get(
                        f"{api}/api/pharmacy/queue", params={"limit": 50}, headers=headers
                    )

                async def direct() -> httpx.Response:
                    return await http.get(
                        f"{hapi}/MedicationRequest",
                        params={"_tag": tag, "status": "active", "_count": 50},
                        headers={"cache-control": "no-cache"},
                    )

                print(
                    f"1. queue page with {max(queued, args.orders)} pending orders "
                    f"({args.rounds} rounds x {args.calls} calls)"
                )
                for _ in range(args.warmup):
                    await queue()
                    await direct()
                q_rounds: list[list[float]] = []
                d_rounds: list[list[float]] = []
                ratios = []
                for r in range(args.rounds):
                    q_times, d_times = [], []
                    for i in range(args.calls):
                        first, second = (queue, direct) if (r + i) % 2 == 0 else (direct, queue)
                        for call in (first, second):
                            ms, status = await _timed(call)
                            assert status == 200, status
                            (q_times if call is queue else d_times).append(ms)
                    q_rounds.append(q_times)
                    d_rounds.append(d_times)
                    ratios.append(pct(q_times, 95) / pct(d_times, 95))
                _summary("queue", q_rounds)
                _summary("direct", d_rounds)
                print(
                    f"   queue p95 / direct p95: {statistics.median(ratios):.2f} "
                    f"({min(ratios):.2f}..{max(ratios):.2f})   target <= 2: "
                    f"{'MET' if statistics.median(ratios) <= 2 else 'NOT MET'}"
                )

                print(
                    "2. dispense one unit of an approved order "
                    f"({args.rounds} rounds x {args.calls})"
                )
                location_id, _ = await _stock(bench, f"B{uuid.uuid4().hex[:6]}", 100_000)
                orders = await _orders(bench, tenant, patient_id, args.rounds * args.calls + 5, 1)
                await _approve(bench, orders)
                pending = iter(orders)
                s_rounds, c_rounds, d_ratios = [], [], []

                async def dispense() -> httpx.Response:
                    order_id = next(pending)
                    return await http.post(
                        f"{api}/api/pharmacy/orders/{order_id}/dispenses",
                        json={"location_id": location_id, "quantity": 1},
                        headers=headers,
                    )

                async def create() -> httpx.Response:
                    return await http.post(
                        f"{hapi}/MedicationDispense",
                        json={
                            "resourceType": "MedicationDispense",
                            "meta": {"tag": [TAG]},
                            "status": "completed",
                            "subject": {"reference": f"Patient/{patient_id}"},
                            "medicationCodeableConcept": {
                                "coding": [{"system": RXNORM, "code": IBUPROFEN["rxcui"]}]
                            },
                            "quantity": {"value": 1, "unit": "{tbl}"},
                        },
                        headers={"content-type": "application/fhir+json"},
                    )

                for _ in range(3):
                    await create()
                for r in range(args.rounds):
                    s_times, c_times = [], []
                    for i in range(args.calls):
                        first, second = (
                            (dispense, create) if (r + i) % 2 == 0 else (create, dispense)
                        )
                        for call in (first, second):
                            ms, status = await _timed(call)
                            assert status == 201, status
                            (s_times if call is dispense else c_times).append(ms)
                    s_rounds.append(s_times)
                    c_rounds.append(c_times)
                    d_ratios.append(pct(s_times, 95) / pct(c_times, 95))
                _summary("dispense", s_rounds)
                _summary("hapi create", c_rounds)
                print(
                    f"   dispense p95 / direct MedicationDispense create p95: "
                    f"{statistics.median(d_ratios):.2f} ({min(d_ratios):.2f}..{max(d_ratios):.2f})"
                )

                print("3. fifty concurrent dispenses of one unit, ten units left")
                location_id, _ = await _stock(bench, f"R{uuid.uuid4().hex[:6]}", 10)
                racing = await _orders(bench, tenant, patient_id, 50, 1)
                await _approve(bench, racing)
                started = time.perf_counter()
                answers = await asyncio.gather(
                    *(
                        http.post(
                            f"{api}/api/pharmacy/orders/{order_id}/dispenses",
                            json={"location_id": location_id, "quantity": 1},
                            headers=headers,
                        )
                        for order_id in racing
                    )
                )
                elapsed = (time.perf_counter() - started) * 1000
                codes = Counter(
                    a.status_code
                    if a.status_code == 201
                    else f"{a.status_code} {a.json().get('code')}"
                    for a in answers
                )
                async with bench.sessions() as session:
                    left = await session.scalar(
                        select(PharmacyStock.quantity).where(
                            PharmacyStock.location_id == uuid.UUID(location_id)
                        )
                    )
                    chain = await pharmacy.verify_ledger(session, bench.tenant_id)
                ok = codes.get(201, 0)
                print(
                    f"   {dict(codes)} in {elapsed:.0f} ms; stock left {left}; ledger "
                    f"{'intact' if chain.intact else 'BROKEN'} ({chain.entries} entries)"
                )
                print(f"   exactly ten succeeded: {'YES' if ok == 10 and left == 0 else 'NO'}")
    await bench.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--orders", type=int, default=1000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
