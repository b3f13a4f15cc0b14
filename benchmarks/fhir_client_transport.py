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

    .venv/bin/python benchmarks/fhir_client_transport.py [--rounds 7] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fhirpy import AsyncFHIRClient

from ehr.core.config import Settings
from ehr.core.errors import AppError
from ehr.fhir import FhirClient, TenantFhirClient

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


def _report(title: str, results: dict[str, list[float]]) -> None:
    print(f"\n{title} (ms; median of round medians, spread = min..max of round medians)")
    medians = {name: statistics.median(values) for name, values in results.items()}
    stock_rounds = results["stock-fhirpy"]
    print(f"  {'variant':<18} {'median':>8}   {'spread':>17}   stock/variant (per-round range)")
    for name, values in results.items():
        ratio = medians["stock-fhirpy"] / medians[name]
        per_round = [s / v for s, v in zip(stock_rounds, values, strict=True)]
        print(
            f"  {name:<18} {medians[name]:8.2f}   {min(values):7.2f} .. {max(values):7.2f}"
            f"   {ratio:5.2f}x ({min(per_round):.2f}..{max(per_round):.2f})"
        )


async def main(args: argparse.Namespace) -> None:
    settings = Settings().fhir
    if args.base_url:
        settings = settings.model_copy(update={"base_url": args.base_url})
    tenant = args.tenant or settings.default_tenant
    run_tag = {"system": "urn:ehr:test", "code": f"bench-{uuid.uuid4().hex[:12]}"}

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


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="HAPI base without tenant (default: settings)")
    parser.add_argument("--tenant", help="partition (default: settings' default tenant)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=200, help="sequential reads per round")
    parser.add_argument("--batches", type=int, default=10, help="concurrent batches per round")
    parser.add_argument("--concurrency", type=int, default=20, help="reads per batch")
    parser.add_argument("--warmup", type=int, default=100, help="reads per variant before")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
