"""Order-set instantiation through the API vs one direct HAPI transaction, same run (issue 15,
item 6).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/order_sets.py \
        [--rounds 5] [--calls 30] [--warmup 5] [--keep]

Target: the p95 of ``POST /api/patients/{id}/order-sets/{set}/instantiate`` for a 10-order set
≤ 1.3 x the p95 of posting the same transaction bundle (RequestGroup + 10 draft orders) straight
to HAPI.

Setup (idempotent, kept between runs): the tenant ``bench-order-sets`` and its physician (real
code paths, like benchmarks/chart.py), one Patient tagged ``urn:ehr:bench|order-sets``, and the
10-member order set ``bench-ten`` made of the shipped starter sets' members (labs, imaging and
two medications), created through ``OrderSetService`` as an administrator would. The API runs
as production starts it (``ehr serve``, one worker, warnings only). Variants, one call at a time,
interleaved per round (order alternating):

  api      POST .../instantiate (bearer token, a fresh Idempotency-Key, body {})
  direct   POST {hapi}/{tenant} of the bundle the service plans for the same set and patient
           (built before the timer starts: fresh urn:uuids and group identifier per call)

Both write 11 resources per call. Prints the machine, the command, per round p50/p95 (ms), the
median of round values with spread, and api/direct as the median of the round p95 ratios. At the
end the resources the run created are deleted (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from fhir_gateway import Identity, _free_port, api_subprocess, pct, wait_ready

from ehr.core.config import LogSettings, Settings
from ehr.core.observability import configure_logging
from ehr.fhir import (
    FhirClient,
    FhirConflict,
    TenantFhirClient,
    entry_location,
    transaction_bundle,
)
from ehr.modules.order_sets import OrderSetService, load_starter_sets
from ehr.modules.order_sets.schemas import InstantiationRequest, OrderSetCreate
from ehr.platform.auth.principal import Principal

TAG = {"system": "urn:ehr:bench", "code": "order-sets"}
MRN = "urn:ehr:bench:order-sets-mrn"
SET_KEY = "bench-ten"
MEMBERS = 10


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.1f} GiB RAM"
    load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}){mem}, load {load}; {platform.system()} "
        f"{platform.release()}; Python {sys.version.split()[0]}"
    )


def _admin(identity: Identity) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=identity.slug,
        tenant_id=identity.tenant_id,
        roles=frozenset({"admin"}),
        username="bench.admin",
    )


def _ten_members() -> list[dict[str, Any]]:
    """Ten distinct orders from the shipped starter sets (by code), keys m01..m10."""
    seen: set[str] = set()
    chosen: list[dict[str, Any]] = []
    for starter in load_starter_sets():
        for member in starter.members:
            document = member.model_dump(mode="json", exclude={"code_source"}, exclude_none=True)
            signature = json.dumps(document["order"], sort_keys=True)
            if signature in seen:
                continue
            seen.add(signature)
            document["key"] = f"m{len(chosen) + 1:02d}"
            document["selected"] = True
            chosen.append(document)
    if len(chosen) < MEMBERS:
        raise SystemExit(f"the starter sets hold only {len(chosen)} distinct orders")
    return chosen[:MEMBERS]


async def _order_set(service: OrderSetService) -> dict[str, Any]:
    resources, _ = await service.list_sets(["active"])
    for resource in resources:
        if any(i.get("value") == SET_KEY for i in resource.get("identifier") or []):
            return resource
    payload = OrderSetCreate.model_validate(
        {"key": SET_KEY, "title": "Benchmark: ten orders", "members": _ten_members()}
    )
    return await service.create(payload)


async def _patient(fhir: TenantFhirClient) -> str:
    found = await fhir.search("Patient", [("identifier", f"{MRN}|one")])
    for entry in found.get("entry") or []:
        return str(entry["resource"]["id"])
    created = await fhir.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [TAG]},
            "identifier": [{"system": MRN, "value": "one"}],
            "name": [{"family": "Zzbenchorders", "given": ["Order"]}],
        }
    )
    return str(created["id"])


async def _timed(call: Any) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def _delete(fhir: TenantFhirClient, created: list[list[str]]) -> None:
    """Delete what the run created: the RequestGroups first (they refer to their orders), then
    the orders, 100 per transaction."""
    groups = [refs[0] for refs in created if refs]
    members = [ref for refs in created for ref in refs[1:]]
    for refs in (groups, members):
        for first in range(0, len(refs), 100):
            entries = [
                {"request": {"method": "DELETE", "url": r}} for r in refs[first : first + 100]
            ]
            try:
                await fhir.transaction(transaction_bundle(entries))
            except FhirConflict as exc:  # say what HAPI refused; the figures still print
                print(f"NOTE: clean-up refused by HAPI (delete by hand): {exc.extra}"[:2000])
                return


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    identity = Identity(settings, args.tenant)
    created: list[list[str]] = []
    async with FhirClient(settings.fhir) as fhir:
        await identity.ensure(fhir)
        tenant = fhir.for_tenant(args.tenant)
        service = OrderSetService(tenant, principal=_admin(identity))
        definition = await _order_set(service)
        set_id = str(definition["id"])
        patient_id = await _patient(tenant)
        token = await identity.token()
        port = _free_port()
        log = Path(tempfile.gettempdir()) / f"bench-order-sets-api-{port}.log"
        hapi = f"{settings.fhir.base_url.rstrip('/')}/{args.tenant}"
        with api_subprocess(port, 1, log) as process:
            api = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_ready(http, api, process, 1)
                url = f"{api}/api/patients/{patient_id}/order-sets/{set_id}/instantiate"

                async def via_api() -> None:
                    headers = {
                        "authorization": f"Bearer {token}",
                        "content-type": "application/json",
                    }
                    if not args.no_idempotency_key:
                        headers["idempotency-key"] = str(uuid.uuid4())
                    response = await http.post(url, content=b"{}", headers=headers)
                    if response.status_code != 201:
                        raise SystemExit(f"api -> {response.status_code}: {response.text[:300]}")
                    body = response.json()
                    created.append(
                        [f"RequestGroup/{body['request_group_id']}"]
                        + [f"{o['resource_type']}/{o['id']}" for o in body["orders"]]
                    )

                pending: list[bytes] = []

                def prepare_direct() -> None:
                    planned = service.plan(definition, patient_id, InstantiationRequest())
                    pending.append(json.dumps(planned.bundle).encode())

                async def direct() -> None:
                    response = await http.post(
                        hapi,
                        content=pending.pop(),
                        headers={"content-type": "application/fhir+json"},
                    )
                    if response.status_code != 200:
                        raise SystemExit(f"direct -> {response.status_code}: {response.text[:300]}")
                    refs = []
                    for entry in response.json().get("entry") or []:
                        where = entry_location(entry)
                        if where is not None:
                            refs.append(f"{where.resource_type}/{where.resource_id}")
                    created.append(refs)

                async def measure(name: str) -> float:
                    if name == "direct":
                        prepare_direct()
                        return await _timed(direct)
                    return await _timed(via_api)

                variants = ("api", "direct")
                for name in variants:
                    for _ in range(args.warmup):
                        await measure(name)
                print(f"machine: {_machine()}")
                print(f"command: {shlex.join([sys.executable, *sys.argv])}")
                print(
                    f"tenant {args.tenant}; set {SET_KEY} ({MEMBERS} orders + the RequestGroup "
                    f"per call); {args.rounds} rounds x {args.calls} calls per variant"
                )
                rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
                for round_no in range(args.rounds):
                    order = list(variants) if round_no % 2 == 0 else list(reversed(variants))
                    for name in order:
                        times = [await measure(name) for _ in range(args.calls)]
                        rounds[name].append((statistics.median(times), pct(times, 95)))
                        print(
                            f"  round {round_no + 1} {name:7s} p50 {statistics.median(times):7.2f}"
                            f"  p95 {pct(times, 95):7.2f} ms"
                        )
        if not args.keep:
            await _delete(tenant, created)
    await identity.aclose()
    print("\n  overall (ms; median of round values, spread min..max)")
    for name, values in rounds.items():
        p50s, p95s = [v[0] for v in values], [v[1] for v in values]
        print(
            f"  {name:7s} p50 {statistics.median(p50s):7.2f} ({min(p50s):.2f}..{max(p50s):.2f})"
            f"  p95 {statistics.median(p95s):7.2f} ({min(p95s):.2f}..{max(p95s):.2f})"
        )
    for label, index, target in (("p95", 1, "   target <= 1.3"), ("p50", 0, "")):
        newline = "\n" if index else ""
        ratios = [a[index] / d[index] for a, d in zip(rounds["api"], rounds["direct"], strict=True)]
        print(
            f"{newline}  instantiate {label} / direct transaction {label}: "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f}){target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-order-sets")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=30, help="per variant per round")
    parser.add_argument("--warmup", type=int, default=5, help="calls per variant before timing")
    parser.add_argument("--keep", action="store_true", help="keep what the run created")
    parser.add_argument(
        "--no-idempotency-key",
        action="store_true",
        help="send no Idempotency-Key (what the key's two statements cost)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
