"""Signing a medication order through the API vs a direct HAPI read, same run (issue 15, item 6).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/order_sign.py \
        [--rounds 5] [--calls 20] [--warmup 3]

Target: the p95 of ``POST /api/patients/{id}/orders/{order}/sign`` ≤ 3 x the p95 of a direct
HAPI read of the same kind of resource.

Setup (idempotent, kept between runs): the tenant ``bench-order-sign`` and its physician (real
code paths, like benchmarks/chart.py), one Patient tagged ``urn:ehr:bench|order-sign`` whose
profile holds 20 active MedicationRequests (20 distinct ingredients from the shipped RxNorm
table) and an allergy. Before each timed call a fresh draft is written straight to HAPI: one
order of three drugs' worth of checking — the issue's "3-drug order" is three medication drafts
pending for the patient, of which each call signs one (our sign is per order; the other two are
in the record the engine reads). The sign runs everything production runs: the patient gate, the
medication-safety engine on the whole record (one engine with CDS order-sign), the duplicate-
order check, the DetectedIssue + Provenance + status update in one FHIR transaction (the body
carries an override reason so an interruptive finding never stops the run), the PHI audit.
The API runs as production starts it (``ehr serve``, one worker, warnings only). Variants, one
call at a time, interleaved per round (order alternating):

  sign     POST .../orders/MedicationRequest-<id>/sign (bearer token, If-Match W/"1")
  read     GET {hapi}/{tenant}/MedicationRequest/<id> (a direct read of one of the drafts)

Prints the machine, the command, per round p50/p95 (ms), the median of round values with spread
and sign/read as the median of the round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from fhir_gateway import Identity, _free_port, api_subprocess, pct, wait_ready
from order_sets import _machine

from ehr.core.config import LogSettings, Settings
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient, TenantFhirClient, entry_location, transaction_bundle
from ehr.modules import orders
from ehr.modules.medication_safety import RXNORM_DIR, RXNORM_SYSTEM

TAG = {"system": "urn:ehr:bench", "code": "order-sign"}
MRN = "urn:ehr:bench:order-sign-mrn"
PROFILE = 20
PENDING = 3
IBUPROFEN_600MG_TABLET = "197806"


def _profile_codes() -> list[str]:
    """20 clinical drugs (SCD) of distinct single ingredients from the shipped RxNorm table."""
    seen: set[str] = set()
    codes: list[str] = []
    with gzip.open(RXNORM_DIR / "concepts.tsv.gz", "rt", encoding="utf-8") as table:
        next(table)
        for line in table:
            rxcui, tty, _name, ingredients = line.rstrip("\n").split("\t")
            if tty != "SCD" or "," in ingredients or ingredients in seen:
                continue
            if rxcui == IBUPROFEN_600MG_TABLET:
                continue
            seen.add(ingredients)
            codes.append(rxcui)
            if len(codes) == PROFILE:
                return codes
    raise SystemExit("the RxNorm table has fewer than 20 single-ingredient clinical drugs")


def _draft_document() -> orders.OrderCreate:
    return orders.MedicationOrderCreate.model_validate(
        {
            "kind": "medication",
            "medication": {
                "system": RXNORM_SYSTEM,
                "code": IBUPROFEN_600MG_TABLET,
                "display": "ibuprofen 600 MG Oral Tablet",
            },
            "dosage": {
                "dose": {"value": 600, "unit": "mg"},
                "route": {"system": "http://snomed.info/sct", "code": "26643006"},
                "frequency": 3,
                "period": 1,
                "period_unit": "d",
            },
            "dispense": {"quantity": {"value": 30, "unit": "{tbl}"}, "supply_days": 10},
            "repeats": 0,
        }
    )


async def _patient(fhir: TenantFhirClient) -> str:
    found = await fhir.search("Patient", [("identifier", f"{MRN}|one")])
    for entry in found.get("entry") or []:
        return str(entry["resource"]["id"])
    created = await fhir.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [TAG]},
            "identifier": [{"system": MRN, "value": "one"}],
            "name": [{"family": "Zzbenchsign", "given": ["Order"]}],
        }
    )
    patient_id = str(created["id"])
    subject = {"reference": f"Patient/{patient_id}"}
    entries: list[dict[str, Any]] = [
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "meta": {"tag": [TAG]},
                "status": "active",
                "intent": "order",
                "subject": subject,
                "medicationCodeableConcept": {"coding": [{"system": RXNORM_SYSTEM, "code": code}]},
            },
            "request": {"method": "POST", "url": "MedicationRequest"},
        }
        for code in _profile_codes()
    ]
    entries.append(
        {
            "resource": {
                "resourceType": "AllergyIntolerance",
                "meta": {"tag": [TAG]},
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "patient": subject,
                "code": {"coding": [{"system": RXNORM_SYSTEM, "code": "7980"}]},  # penicillin G
            },
            "request": {"method": "POST", "url": "AllergyIntolerance"},
        }
    )
    await fhir.transaction(transaction_bundle(entries))
    return patient_id


async def _drafts(
    fhir: TenantFhirClient, patient_id: str, requester: dict[str, Any], count: int
) -> list[str]:
    """``count`` fresh medication drafts of the patient, written in one transaction."""
    resource = orders.build_draft(patient_id, _draft_document(), requester)
    resource["meta"] = {"tag": [TAG]}
    answer = await fhir.transaction(
        transaction_bundle(
            [
                {"resource": resource, "request": {"method": "POST", "url": "MedicationRequest"}}
                for _ in range(count)
            ]
        )
    )
    ids = []
    for entry in answer.get("entry") or []:
        where = entry_location(entry)
        if where is not None:
            ids.append(where.resource_id)
    return ids


async def _timed(call: Any) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    identity = Identity(settings, args.tenant)
    async with FhirClient(settings.fhir) as fhir:
        await identity.ensure(fhir)
        tenant = fhir.for_tenant(args.tenant)
        patient_id = await _patient(tenant)
        requester = {"display": "bench physician"}
        token = await identity.token()
        port = _free_port()
        log = Path(tempfile.gettempdir()) / f"bench-order-sign-api-{port}.log"
        hapi = f"{settings.fhir.base_url.rstrip('/')}/{args.tenant}"
        with api_subprocess(port, 1, log) as process:
            api = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_ready(http, api, process, 1)
                headers = {
                    "authorization": f"Bearer {token}",
                    "content-type": "application/json",
                    "if-match": 'W/"1"',
                }
                body = b'{"override": {"reason": "benchmark run"}}'
                pending: list[str] = []

                signed: list[str] = []

                async def sign() -> None:
                    order_id = pending.pop(0)
                    url = f"{api}/api/patients/{patient_id}/orders/MedicationRequest-{order_id}"
                    response = await http.post(f"{url}/sign", content=body, headers=headers)
                    if response.status_code != 200:
                        raise SystemExit(f"sign -> {response.status_code}: {response.text[:300]}")
                    signed.append(order_id)

                async def retire_signed() -> None:
                    """Outside the timer: a signed order leaves the record (entered-in-error),
                    so every call signs against the same 20-drug profile."""
                    while signed:
                        current = await tenant.read("MedicationRequest", signed.pop())
                        current["status"] = "entered-in-error"
                        await tenant.update(current)

                async def read() -> None:
                    response = await http.get(f"{hapi}/MedicationRequest/{pending[0]}")
                    if response.status_code != 200:
                        raise SystemExit(f"read -> {response.status_code}: {response.text[:300]}")

                async def measure(name: str) -> float:
                    # Always PENDING drafts in the record: the one signed and two more.
                    while len(pending) < PENDING:
                        pending.extend(await _drafts(tenant, patient_id, requester, PENDING))
                    await retire_signed()
                    return await _timed(sign if name == "sign" else read)

                variants = ("sign", "read")
                for name in variants:
                    for _ in range(args.warmup):
                        await measure(name)
                print(f"machine: {_machine()}")
                print(f"command: {shlex.join([sys.executable, *sys.argv])}")
                print(
                    f"tenant {args.tenant}; profile {PROFILE} active medications + 1 allergy, "
                    f"{PENDING} medication drafts pending; {args.rounds} rounds x {args.calls} "
                    "calls per variant"
                )
                rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
                for round_no in range(args.rounds):
                    order = list(variants) if round_no % 2 == 0 else list(reversed(variants))
                    for name in order:
                        times = [await measure(name) for _ in range(args.calls)]
                        await retire_signed()
                        rounds[name].append((statistics.median(times), pct(times, 95)))
                        print(
                            f"  round {round_no + 1} {name:5s} p50 {statistics.median(times):7.2f}"
                            f"  p95 {pct(times, 95):7.2f} ms"
                        )
            signed.extend(pending)  # the drafts left over leave the record too
            await retire_signed()
    await identity.aclose()
    print("\n  overall (ms; median of round values, spread min..max)")
    for name, values in rounds.items():
        p50s, p95s = [v[0] for v in values], [v[1] for v in values]
        print(
            f"  {name:5s} p50 {statistics.median(p50s):7.2f} ({min(p50s):.2f}..{max(p50s):.2f})"
            f"  p95 {statistics.median(p95s):7.2f} ({min(p95s):.2f}..{max(p95s):.2f})"
        )
    ratios = [s[1] / r[1] for s, r in zip(rounds["sign"], rounds["read"], strict=True)]
    print(
        f"\n  sign p95 / direct HAPI read p95: {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}..{max(ratios):.2f})   target <= 3"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-order-sign")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
