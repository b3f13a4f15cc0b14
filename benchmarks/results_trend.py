"""A result trend for a patient with 5,000 Observations vs one with 50, same run (issue 15,
item 6).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/results_trend.py \
        [--rounds 5] [--calls 40] [--observations 5000]

Target: the p95 of ``GET /api/patients/{id}/trends/2823-3`` for the large patient ≤ 1.5 x that
of the small one. Both ask for the same number of points (``limit=50``: a chart's window), so
the ratio is what the record's size costs; the default window (200 points) of the large patient
is printed beside it for reference, as is the direct HAPI search the trend issues.

Setup (idempotent, kept between runs): the tenant ``bench-results`` and its physician (real code
paths, as benchmarks/fhir_gateway.py), two patients tagged ``urn:ehr:bench|results`` — "small"
with 50 laboratory potassium Observations (LOINC 2823-3, mmol/L, one every 7 hours back from the
seeding hour), "large" with N — seeded through HAPI transaction bundles of 250. A few results
are in µmol/L so the trend converts units. The API runs as production starts it (``ehr serve``,
one worker, warnings only). Variants, interleaved per round (order alternating):

  small        GET /api/patients/{small}/trends/2823-3?limit=50 (bearer token)
  large        GET /api/patients/{large}/trends/2823-3?limit=50
  large-200    GET /api/patients/{large}/trends/2823-3 (default limit, 200 points)
  hapi-large   the trend's HAPI search for the large patient, direct

Prints per round p50/p95 (ms), the median of round values with spread, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from fhir_gateway import Identity, _free_port, api_subprocess, pct, wait_ready

from ehr.core.config import LogSettings, Settings
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.results.trends import trend_search_params

TAG = {"system": "urn:ehr:bench", "code": "results"}
MRN = "urn:ehr:bench:results-mrn"
LOINC = "http://loinc.org"
CODE = "2823-3"
SEED_VERSION = "v1"
_SEEDED_ON = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
_BATCH = 250


def _potassium(subject: str, index: int, rng: random.Random) -> dict[str, Any]:
    when = (_SEEDED_ON - dt.timedelta(hours=index * 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = round(rng.uniform(2.6, 6.6), 1)
    in_micromoles = index % 10 == 3
    unit = "umol/L" if in_micromoles else "mmol/L"
    return {
        "resourceType": "Observation",
        "meta": {"tag": [TAG]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": CODE, "display": "Potassium"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "issued": when,
        "valueQuantity": {
            "value": value * 1000 if in_micromoles else value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


async def _patient(fhir: TenantFhirClient, label: str, count: int) -> str:
    found = await fhir.search("Patient", [("identifier", f"{MRN}|{label}")])
    entries = found.get("entry") or []
    if entries:
        patient_id = str(entries[0]["resource"]["id"])
    else:
        created = await fhir.create(
            {
                "resourceType": "Patient",
                "meta": {"tag": [TAG]},
                "identifier": [{"system": MRN, "value": label}],
                "name": [{"family": f"Zzbench{label}", "given": ["Results"]}],
            }
        )
        patient_id = str(created["id"])
    have = await fhir.search(
        "Observation", [("patient", patient_id), ("code", CODE), ("_summary", "count")]
    )
    start = int(have.get("total", 0))
    rng = random.Random(f"{label}-{start}")
    subject = f"Patient/{patient_id}"
    for first in range(start, count, _BATCH):
        entries_ = [
            {
                "resource": _potassium(subject, i, rng),
                "request": {"method": "POST", "url": "Observation"},
            }
            for i in range(first, min(count, first + _BATCH))
        ]
        await fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries_})
    return patient_id


async def _timed(call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    identity = Identity(settings, args.tenant)
    rounds: dict[str, list[tuple[float, float]]] = {}
    async with FhirClient(settings.fhir) as fhir:
        await identity.ensure(fhir)
        tenant = fhir.for_tenant(args.tenant)
        seeding = time.perf_counter()
        small = await _patient(tenant, f"small-{SEED_VERSION}", 50)
        large = await _patient(tenant, f"large-{SEED_VERSION}", args.observations)
        print(f"seeded/checked in {time.perf_counter() - seeding:.1f} s")
        token = await identity.token()
        port = _free_port()
        log = Path(tempfile.gettempdir()) / f"bench-results-api-{port}.log"
        try:
            with api_subprocess(port, 1, log) as process:
                api = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(timeout=30) as http:
                    await wait_ready(http, api, process, 1)
                    headers = {"authorization": f"Bearer {token}"}

                    async def get(patient: str, params: dict[str, Any]) -> None:
                        url = f"{api}/api/patients/{patient}/trends/{CODE}"
                        response = await http.get(url, params=params, headers=headers)
                        if response.status_code != 200:
                            raise SystemExit(
                                f"{url} -> {response.status_code}: {response.text[:300]}"
                            )

                    async def hapi_large() -> None:
                        await tenant.search(
                            "Observation",
                            trend_search_params(large, CODE, since=None, until=None, limit=50),
                            single_page=True,
                        )

                    variants: dict[str, Callable[[], Awaitable[None]]] = {
                        "small": lambda: get(small, {"limit": 50}),
                        "large": lambda: get(large, {"limit": 50}),
                        "large-200": lambda: get(large, {}),
                        "hapi-large": hapi_large,
                    }
                    for call in variants.values():
                        for _ in range(5):
                            await call()
                    print(
                        f"machine: cores {len(os.sched_getaffinity(0))}; tenant {args.tenant}; "
                        f"large patient {args.observations} potassium Observations, small 50"
                    )
                    rounds = {name: [] for name in variants}
                    for round_no in range(args.rounds):
                        order = list(variants)
                        if round_no % 2:
                            order.reverse()
                        for name in order:
                            times = [await _timed(variants[name]) for _ in range(args.calls)]
                            rounds[name].append((statistics.median(times), pct(times, 95)))
                            print(
                                f"  round {round_no + 1} {name:10s} p50 "
                                f"{statistics.median(times):7.2f}  p95 {pct(times, 95):7.2f} ms"
                            )
        finally:
            await identity.aclose()
    print("\n  overall (ms; median of round values, spread min..max)")
    for name, values in rounds.items():
        p50s, p95s = [v[0] for v in values], [v[1] for v in values]
        print(
            f"  {name:10s} p50 {statistics.median(p50s):7.2f} ({min(p50s):.2f}..{max(p50s):.2f})"
            f"  p95 {statistics.median(p95s):7.2f} ({min(p95s):.2f}..{max(p95s):.2f})"
        )

    def ratio(a: str, b: str) -> str:
        values = [x[1] / y[1] for x, y in zip(rounds[a], rounds[b], strict=True)]
        return f"{statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f})"

    print(
        f"\n  trend p95, {args.observations} / 50 observations (50 points each): "
        f"{ratio('large', 'small')}   target <= 1.5"
    )
    print(f"  trend p95, large 200 points / small 50 points: {ratio('large-200', 'small')}")
    print(f"  trend p95 / its HAPI search p95 (large): {ratio('large', 'hapi-large')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-results")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="per variant per round")
    parser.add_argument("--observations", type=int, default=5000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
