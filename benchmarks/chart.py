"""The chart's views vs HAPI, same run (issue 14, item 7).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/chart.py \
        [--rounds 5] [--calls 40] [--observations 5000]

Targets: the summary's p95 ≤ 0.6 x the p95 of the same HAPI queries made one after another
(the summary issues them in parallel); a timeline page's p95 for a patient with N (default 5,000)
Observations ≤ 1.5 x that of a patient with 50.

Setup (idempotent, kept between runs): the tenant ``bench-chart`` and its physician (real code
paths, like benchmarks/fhir_gateway.py), two patients tagged ``urn:ehr:bench|chart`` — "small" with
50 laboratory Observations, "large" with N — each with a few problems, an allergy, medications,
vitals, an order and an encounter. The API runs as production starts it (``ehr serve``, one
worker, warnings only). Variants, interleaved per round (order alternating):

  summary      GET /api/patients/{large}/summary (bearer token)
  sequential   the summary's HAPI searches (its own plan: ehr.modules.chart.service.summary_plan,
               a query's fallback when its answer would make the summary ask it) for the same
               patient, one after another, direct
  tl-small     GET /api/patients/{small}/timeline?limit=25
  tl-large     GET /api/patients/{large}/timeline?limit=25

Prints per round p50/p95 (ms), the median of round values with spread, the two ratios, and
the CPU each process spent per call (API, HAPI, PostgreSQL, this benchmark's own client) for the
summary and the sequential searches: on a machine with few cores the summary cannot finish
sooner than its total CPU divided by the cores, whatever its parallelism (the "floor" line).
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
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from fhir_gateway import Identity, _free_port, api_subprocess, pct, wait_ready
from load import probes

from ehr.core.config import LogSettings, Settings
from ehr.core.observability import configure_logging
from ehr.devstack.stack import Stack
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.chart.service import SummaryQuery, summary_plan

TAG = {"system": "urn:ehr:bench", "code": "chart"}
MRN = "urn:ehr:bench:chart-mrn"
LOINC = "http://loinc.org"
_SEEDED_ON = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
# Patients seeded before results were dated relative to the seeding day are left alone.
SEED_VERSION = "v2"
LAB_CODES = ("2345-7", "2823-3", "2951-2", "718-7", "4548-4", "2160-0")


def _lab(subject: str, index: int, rng: random.Random) -> dict[str, Any]:
    # One result every 7 hours back from the day the patient was seeded (5,000 span four years).
    when = _SEEDED_ON - dt.timedelta(hours=index * 7)
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
        "code": {"coding": [{"system": LOINC, "code": rng.choice(LAB_CODES)}]},
        "subject": {"reference": subject},
        "effectiveDateTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {"value": round(rng.uniform(1, 10), 1), "unit": "mmol/L"},
    }


async def _patient(fhir: TenantFhirClient, label: str, labs: int) -> str:
    found = await fhir.search("Patient", [("identifier", f"{MRN}|{label}")])
    entries = found.get("entry") or []
    if entries:
        patient_id = str(entries[0]["resource"]["id"])
        have = await fhir.search(
            "Observation",
            [("patient", patient_id), ("category", "laboratory"), ("_summary", "count")],
        )
        if int(have.get("total", 0)) >= labs:
            return patient_id
    else:
        created = await fhir.create(
            {
                "resourceType": "Patient",
                "meta": {"tag": [TAG]},
                "identifier": [{"system": MRN, "value": label}],
                "name": [{"family": f"Zzbench{label}", "given": ["Chart"]}],
            }
        )
        patient_id = str(created["id"])
        subject = f"Patient/{patient_id}"
        for resource in (
            {"resourceType": "Condition", "code": {"text": "Hypertension"}},
            {"resourceType": "AllergyIntolerance", "code": {"text": "Penicillin"}},
        ):
            key = "patient" if resource["resourceType"] == "AllergyIntolerance" else "subject"
            await fhir.create({**resource, "meta": {"tag": [TAG]}, key: {"reference": subject}})
        have = {"total": 0}
    rng = random.Random(label)
    subject = f"Patient/{patient_id}"
    start = int(have.get("total", 0))
    for first in range(start, labs, 250):
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": _lab(subject, i, rng),
                    "request": {"method": "POST", "url": "Observation"},
                }
                for i in range(first, min(labs, first + 250))
            ],
        }
        await fhir.transaction(bundle)
    return patient_id


def _summary_queries(patient_id: str) -> list[SummaryQuery]:
    """The searches the summary makes, from the service's own plan (so the two never drift)."""
    plan = summary_plan(patient_id, dt.datetime.now(dt.UTC))
    return [query for queries in plan.values() for query in queries]


async def _timed(call: Any) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


def _own_cpu_ms() -> float:
    """CPU this process (the benchmark's client) has used so far, in ms."""
    return time.process_time() * 1000


def _process_groups(settings: Settings, api_pid: int) -> probes.ProcessGroups:
    cluster = Stack.from_settings().postgres()
    return probes.ProcessGroups(
        api_root=api_pid,
        hapi_port=urllib.parse.urlsplit(settings.fhir.base_url).port or 80,
        postgres_pid=cluster.pid() if cluster is not None and cluster.running() else None,
        redis_port=urllib.parse.urlsplit(settings.redis.url.get_secret_value()).port or 6379,
    )


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    identity = Identity(settings, args.tenant)
    async with FhirClient(settings.fhir) as fhir:
        await identity.ensure(fhir)
        tenant = fhir.for_tenant(args.tenant)
        small = await _patient(tenant, f"small-{SEED_VERSION}", 50)
        large = await _patient(tenant, f"large-{SEED_VERSION}", args.observations)
        token = await identity.token()
        port = _free_port()
        log = Path(tempfile.gettempdir()) / f"bench-chart-api-{port}.log"
        cpu: dict[str, dict[str, float]] = {}
        calls_made: dict[str, int] = {}
        with api_subprocess(port, 1, log) as process:
            groups = _process_groups(settings, process.pid)
            api = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=30) as http:
                await wait_ready(http, api, process, 1)
                headers = {"authorization": f"Bearer {token}"}

                async def get(url: str, params: dict[str, Any] | None = None) -> None:
                    response = await http.get(url, params=params, headers=headers)
                    if response.status_code != 200:
                        raise SystemExit(f"{url} -> {response.status_code}: {response.text[:300]}")

                async def sequential() -> None:
                    for query in _summary_queries(large):
                        step: SummaryQuery | None = query
                        while step is not None:
                            found = await tenant.search(
                                step.resource_type, step.search_params(), single_page=True
                            )
                            full = len(found.get("entry") or []) > step.limit
                            step = None if full else step.fallback

                variants = {
                    "summary": lambda: get(f"{api}/api/patients/{large}/summary"),
                    "sequential": sequential,
                    "tl-small": lambda: get(f"{api}/api/patients/{small}/timeline", {"limit": 25}),
                    "tl-large": lambda: get(f"{api}/api/patients/{large}/timeline", {"limit": 25}),
                }
                for call in variants.values():
                    for _ in range(5):
                        await call()
                print(
                    f"machine: cores {len(os.sched_getaffinity(0))}; tenant "
                    f"{args.tenant}; large patient {args.observations} laboratory Observations"
                )
                rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
                for round_no in range(args.rounds):
                    order = list(variants)
                    if round_no % 2:
                        order.reverse()
                    for name in order:
                        before, own = probes.cpu_snapshot(groups), _own_cpu_ms()
                        times = [await _timed(variants[name]) for _ in range(args.calls)]
                        used, _busy = probes.cpu_delta(before, probes.cpu_snapshot(groups))
                        used["client"] = _own_cpu_ms() - own
                        spent = cpu.setdefault(name, {})
                        for group, ms in used.items():
                            spent[group] = spent.get(group, 0.0) + ms
                        calls_made[name] = calls_made.get(name, 0) + args.calls
                        rounds[name].append((statistics.median(times), pct(times, 95)))
                        print(
                            f"  round {round_no + 1} {name:11s} p50 {statistics.median(times):7.2f}"
                            f"  p95 {pct(times, 95):7.2f} ms"
                        )
        identity_close = identity.aclose()
        await identity_close
    print("\n  overall (ms; median of round values, spread min..max)")
    for name, values in rounds.items():
        p50s, p95s = [v[0] for v in values], [v[1] for v in values]
        print(
            f"  {name:11s} p50 {statistics.median(p50s):7.2f} ({min(p50s):.2f}..{max(p50s):.2f})"
            f"  p95 {statistics.median(p95s):7.2f} ({min(p95s):.2f}..{max(p95s):.2f})"
        )

    def ratio(a: str, b: str) -> str:
        values = [x[1] / y[1] for x, y in zip(rounds[a], rounds[b], strict=True)]
        return f"{statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f})"

    print(
        f"\n  summary p95 / sequential HAPI queries p95: {ratio('summary', 'sequential')}"
        "   target <= 0.6"
    )
    print(
        f"  timeline p95, {args.observations} / 50 observations: {ratio('tl-large', 'tl-small')}"
        "   target <= 1.5"
    )
    cores = len(os.sched_getaffinity(0))
    print(f"\n  CPU ms per call (all rounds; {cores} cores shared by every process)")
    totals: dict[str, float] = {}
    for name in ("summary", "sequential"):
        per = {group: ms / calls_made[name] for group, ms in cpu[name].items()}
        totals[name] = sum(per.values())
        print(
            f"  {name:11s} "
            + "  ".join(f"{group} {ms:5.1f}" for group, ms in per.items())
            + f"  total {totals[name]:5.1f}"
        )
    sequential_p50 = statistics.median(v[0] for v in rounds["sequential"])
    floor = totals["summary"] / cores
    print(
        f"  floor: the summary's CPU / {cores} cores = {floor:.1f} ms = "
        f"{floor / sequential_p50:.2f} x the sequential searches' p50 ({sequential_p50:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-chart")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40, help="per variant per round")
    parser.add_argument("--observations", type=int, default=5000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
