"""Stock fhirpy (one aiohttp session per request) vs our pooled-httpx FHIR client, same run.

Measures against the real HAPI, in interleaved rounds (the order of the variants alternates
between rounds so neither always runs on a warmer JVM):

  sequential  N reads of one Patient, one after the other; per-request latency
  concurrent  B batches of C reads fired together (asyncio.gather); wall time per batch

Variants (each pooled one exists per HTTP backend of ehr.fhir: httpcore = httpx's own transport,
aiohttp = ehr.fhir.aiohttp_transport under the same httpx client):
  stock-fhirpy      fhirpy.AsyncFHIRClient(...).get("Patient", id)  (new aiohttp session each time)
  fhirpy/<backend>  the same fhirpy call on ehr.fhir's TenantQueryClient (our pooled client)
  read/<backend>    ehr.fhir TenantFhirClient.read("Patient", id)

Prints per-variant median of the round medians, the spread (min..max of round medians) and the
ratio stock ÷ variant (> 1: the variant is faster than stock fhirpy). Creates one tagged
Patient (urn:ehr:test|bench-...) and deletes it afterwards.

``--scenario record`` measures instead the medication-safety record read (three concurrent
searches, two with ``_include``; a synthetic patient with 30 orders, 10 statements, 10
Medications and 5 allergies), each variant over the same pooled client (httpcore):

  search_all        TenantFhirClient.search_all x 3 (what the service does; bounded, includes kept)
  fhirpy-raw        fhirpy search sets .include(...).limit(100).fetch_raw() x 3, entries split the
                    same way (fhirpy keeps includes only in the raw Bundle)
  fhirpy-fetch_all  fhirpy .fetch_all() x 3 (idiomatic; unbounded paging, includes dropped)

and, without HAPI, the CPU cost of turning the orders' searchset (40 entries) into resources (json +
the typed accessors vs fhirpy's AttrDict/resource objects). docs/adr/0017-typed-fhir-layer.md
records the figures.

    .venv/bin/python benchmarks/fhir_client_transport.py [--rounds 7] [--requests 200]
    .venv/bin/python benchmarks/fhir_client_transport.py --scenario record [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fhirpy import AsyncFHIRClient
from fhirpy.base.utils import AttrDict

from ehr.core.config import FhirSettings, Settings
from ehr.core.errors import AppError
from ehr.fhir import (
    FhirClient,
    SearchResult,
    TenantFhirClient,
    batch_bundle,
    codings,
    create_entry,
    delete_entry,
    entry_location,
    has_next,
    new_full_url,
    search_result,
    transaction_bundle,
)

Read = Callable[[], Awaitable[Any]]


def _variants(
    base_url: str, tenant: str, clients: dict[str, TenantFhirClient], patient_id: str
) -> dict[str, Read]:
    stock = AsyncFHIRClient(f"{base_url.rstrip('/')}/{tenant}")

    async def stock_read() -> Any:
        return await stock.get("Patient", patient_id)

    variants: dict[str, Read] = {"stock-fhirpy": stock_read}
    for backend, tenant_fhir in clients.items():
        pooled_fhirpy = tenant_fhir.resources("Patient").client

        async def pooled_fhirpy_read(client: Any = pooled_fhirpy) -> Any:
            return await client.get("Patient", patient_id)

        async def pooled_read(client: TenantFhirClient = tenant_fhir) -> Any:
            return await client.read("Patient", patient_id)

        variants[f"fhirpy/{backend}"] = pooled_fhirpy_read
        variants[f"read/{backend}"] = pooled_read
    return variants


async def _sequential(read: Read, requests: int) -> float:
    """Median latency (ms) of ``requests`` reads made one after another."""
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        await read()
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


async def _concurrent(read: Read, batches: int, concurrency: int) -> float:
    """Median wall time (ms) of ``batches`` batches of ``concurrency`` simultaneous reads."""
    walls = []
    for _ in range(batches):
        started = time.perf_counter()
        await asyncio.gather(*(read() for _ in range(concurrency)))
        walls.append((time.perf_counter() - started) * 1000)
    return statistics.median(walls)


def _report(title: str, results: dict[str, list[float]], baseline: str = "stock-fhirpy") -> None:
    print(f"\n{title} (ms; median of round medians, spread = min..max of round medians)")
    medians = {name: statistics.median(values) for name, values in results.items()}
    stock_rounds = results[baseline]
    print(
        f"  {'variant':<18} {'median':>8}   {'spread':>17}   {baseline}/variant (per-round range)"
    )
    for name, values in results.items():
        ratio = medians[baseline] / medians[name]
        per_round = [s / v for s, v in zip(stock_rounds, values, strict=True)]
        print(
            f"  {name:<18} {medians[name]:8.2f}   {min(values):7.2f} .. {max(values):7.2f}"
            f"   {ratio:5.2f}x ({min(per_round):.2f}..{max(per_round):.2f})"
        )


def _target(args: argparse.Namespace) -> tuple[FhirSettings, str, dict[str, str]]:
    """The FHIR settings, the tenant and a fresh run tag for this run."""
    settings = Settings().fhir
    if args.base_url:
        settings = settings.model_copy(update={"base_url": args.base_url})
    tenant = args.tenant or settings.default_tenant
    return settings, tenant, {"system": "urn:ehr:test", "code": f"bench-{uuid.uuid4().hex[:12]}"}


async def main(args: argparse.Namespace) -> None:
    settings, tenant, run_tag = _target(args)

    async with (
        FhirClient(settings, http_backend="httpcore") as fhir_httpcore,
        FhirClient(settings, http_backend="aiohttp") as fhir_aiohttp,
    ):
        clients = {
            "httpcore": fhir_httpcore.for_tenant(tenant),
            "aiohttp": fhir_aiohttp.for_tenant(tenant),
        }
        tenant_fhir = clients["httpcore"]
        patient = await tenant_fhir.create(
            {"resourceType": "Patient", "meta": {"tag": [run_tag]}, "gender": "unknown"}
        )
        try:
            variants = _variants(settings.base_url, tenant, clients, patient["id"])
            for read in variants.values():  # warm the JVM, the pools and the caches
                await _sequential(read, args.warmup)

            sequential: dict[str, list[float]] = {name: [] for name in variants}
            concurrent: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for round_index in range(args.rounds):
                order = names if round_index % 2 == 0 else names[::-1]
                for name in order:
                    sequential[name].append(await _sequential(variants[name], args.requests))
                for name in order:
                    concurrent[name].append(
                        await _concurrent(variants[name], args.batches, args.concurrency)
                    )
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        finally:
            try:
                await tenant_fhir.delete("Patient", patient["id"])
            except AppError as exc:  # report, but keep the original failure visible
                print(f"cleanup failed ({exc.code}): delete Patient/{patient['id']} by hand")

    print(
        f"\nHAPI {settings.base_url}/{tenant}; {args.rounds} interleaved rounds; "
        f"sequential: {args.requests} reads/round; concurrent: {args.batches} batches x "
        f"{args.concurrency} reads/round"
    )
    _report("Sequential read latency, per request", sequential)
    _report(f"Concurrent batch of {args.concurrency} reads, wall time", concurrent)


# --- scenario "record": the medication-safety record read -------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_RECORD_TYPES = ("MedicationRequest", "MedicationStatement", "AllergyIntolerance", "Medication")


def _record_bundle(tag: dict[str, str]) -> dict[str, Any]:
    """A synthetic patient: 30 orders and 10 statements over 10 Medications, 5 allergies."""
    meta = {"tag": [tag]}
    patient_url = new_full_url()
    subject = {"reference": patient_url}
    entries = [
        create_entry(
            {"resourceType": "Patient", "meta": meta, "gender": "unknown"}, full_url=patient_url
        )
    ]
    medication_urls = [new_full_url() for _ in range(10)]
    for index, url in enumerate(medication_urls):
        code = {
            "coding": [{"system": RXNORM, "code": str(855000 + index), "display": f"drug {index}"}]
        }
        entries.append(
            create_entry({"resourceType": "Medication", "meta": meta, "code": code}, full_url=url)
        )
    for index in range(30):
        entries.append(
            create_entry(
                {
                    "resourceType": "MedicationRequest",
                    "meta": meta,
                    "status": "active",
                    "intent": "order",
                    "subject": subject,
                    "medicationReference": {"reference": medication_urls[index % 10]},
                }
            )
        )
    for index in range(10):
        entries.append(
            create_entry(
                {
                    "resourceType": "MedicationStatement",
                    "meta": meta,
                    "status": "active",
                    "subject": subject,
                    "medicationReference": {"reference": medication_urls[index]},
                }
            )
        )
    for index in range(5):
        entries.append(
            create_entry(
                {
                    "resourceType": "AllergyIntolerance",
                    "meta": meta,
                    "patient": subject,
                    "code": {
                        "coding": [
                            {"system": "http://snomed.info/sct", "code": str(91936005 + index)}
                        ]
                    },
                }
            )
        )
    return transaction_bundle(entries)


def _record_searches(patient_id: str) -> list[tuple[str, list[tuple[str, str]]]]:
    subject = f"Patient/{patient_id}"
    return [
        (
            "MedicationRequest",
            [
                ("subject", subject),
                ("status", "active,on-hold"),
                ("_include", "MedicationRequest:medication"),
            ],
        ),
        (
            "MedicationStatement",
            [
                ("subject", subject),
                ("status", "active,intended,on-hold"),
                ("_include", "MedicationStatement:medication"),
            ],
        ),
        ("AllergyIntolerance", [("patient", subject)]),
    ]


def _record_variants(fhir: TenantFhirClient, patient_id: str) -> dict[str, Read]:
    searches = _record_searches(patient_id)

    async def with_search_all() -> Any:
        return await asyncio.gather(
            *(fhir.search_all(t, p, page_size=100, max_pages=3) for t, p in searches)
        )

    def search_set(resource_type: str, params: list[tuple[str, str]]) -> Any:
        query = fhir.resources(resource_type)
        for name, value in params:
            if name == "_include":
                source, _, target = value.partition(":")
                query = query.include(source, target)
            else:
                query = query.search(**{name: value})
        return query.limit(100)

    async def with_fhirpy_raw() -> Any:
        bundles = await asyncio.gather(*(search_set(t, p).fetch_raw() for t, p in searches))
        return [
            search_result([bundle], t, complete=not has_next(bundle))
            for bundle, (t, _) in zip(bundles, searches, strict=True)
        ]

    async def with_fhirpy_fetch_all() -> Any:
        return await asyncio.gather(*(search_set(t, p).fetch_all() for t, p in searches))

    return {
        "search_all": with_search_all,
        "fhirpy-raw": with_fhirpy_raw,
        "fhirpy-fetch_all": with_fhirpy_fetch_all,
    }


def _decode_costs(fhir: TenantFhirClient, raw: bytes, iterations: int = 200) -> dict[str, float]:
    """Median µs to turn one searchset's bytes into resources and read every coding."""
    query = fhir.resources("MedicationRequest")

    def plain() -> int:
        found = search_result([json.loads(raw)], "MedicationRequest", complete=True)
        resources = [*found.matches, *found.included.values()]
        return sum(len(codings(r.get("code"))) for r in resources)

    def fhirpy_objects() -> int:
        bundle = json.loads(raw, object_hook=AttrDict)
        resources = [query._dict_to_resource(e["resource"]) for e in bundle.get("entry", [])]
        return sum(len(r.get("code", {}).get("coding", [])) for r in resources)

    costs = {}
    for name, call in (
        ("json + typed accessors", plain),
        ("fhirpy AttrDict + resources", fhirpy_objects),
    ):
        samples = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            call()
            samples.append((time.perf_counter_ns() - started) / 1000)
        costs[name] = statistics.median(samples)
    return costs


async def record_main(args: argparse.Namespace) -> None:
    settings, tenant, tag = _target(args)
    async with FhirClient(settings, http_backend="httpcore") as client:
        fhir = client.for_tenant(tenant)
        created = await fhir.transaction(_record_bundle(tag))
        locations = [loc for e in created["entry"] if (loc := entry_location(e))]
        patient_id = next(loc.resource_id for loc in locations if loc.resource_type == "Patient")
        try:
            variants = _record_variants(fhir, patient_id)
            found: list[SearchResult] = await variants["search_all"]()
            print(
                "record: "
                + ", ".join(
                    f"{len(part.matches)} matches + {len(part.included)} included" for part in found
                ),
                flush=True,
            )
            for read in variants.values():
                await _sequential(read, args.warmup // 5)
            results: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for round_index in range(args.rounds):
                order = names if round_index % 2 == 0 else names[::-1]
                for name in order:
                    results[name].append(await _sequential(variants[name], args.requests // 5))
                print(f"round {round_index + 1}/{args.rounds} done", flush=True)
            resource_type, params = _record_searches(patient_id)[0]
            first = await fhir.search(resource_type, [*params, ("_count", "100")])
            raw = json.dumps(first).encode()
            costs = _decode_costs(fhir, raw)
        finally:
            deletes = [
                delete_entry(loc.resource_type, loc.resource_id)
                for kind in _RECORD_TYPES
                for loc in locations
                if loc.resource_type == kind
            ]
            try:
                await fhir.batch(batch_bundle(deletes))
                await fhir.delete("Patient", patient_id)
            except AppError as exc:
                print(f"cleanup failed ({exc.code}): delete the resources tagged {tag['code']}")
    print(
        f"\nHAPI {settings.base_url}/{tenant}; {args.rounds} interleaved rounds of "
        f"{args.requests // 5} record reads (3 concurrent searches each)"
    )
    _report("Medication-safety record read, per record", results, baseline="search_all")
    entries = len(first.get("entry", []))
    print(f"\nDecoding the orders' searchset ({len(raw)} bytes, {entries} entries), CPU only")
    print("  (µs, median of 200)")
    for name, cost in costs.items():
        print(f"  {name:<28} {cost:8.1f}")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="HAPI base without tenant (default: settings)")
    parser.add_argument("--tenant", help="partition (default: settings' default tenant)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200, help="sequential reads per round")
    parser.add_argument("--batches", type=int, default=10, help="concurrent batches per round")
    parser.add_argument("--concurrency", type=int, default=20, help="reads per batch")
    parser.add_argument("--warmup", type=int, default=100, help="reads per variant before")
    parser.add_argument(
        "--scenario",
        choices=["read", "record"],
        default="read",
        help="read: one Patient, stock fhirpy vs pooled; record: the medication-safety record read",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse()
    asyncio.run(record_main(arguments) if arguments.scenario == "record" else main(arguments))
