"""The authenticated FHIR gateway (/fhir) vs HAPI direct, same run (issue 4, item 6).

    .venv/bin/ehr stack run -- .venv/bin/python benchmarks/fhir_gateway.py \
        [--rate 40] [--seconds 10] [--rounds 5] [--patients 200]

Setup (idempotent): a benchmark tenant (HAPI partition) and a physician user made through the real
code paths (ehr.platform.tenancy.create_tenant, ehr.platform.auth.service.create_user), access
tokens from
ehr.platform.auth.tokens.issue_access_token_for (re-issued every phase: they live 5 minutes); N
patients
with a few Observations each, and 2 x 200 large "blob" Observations for the streaming run, all
tagged urn:ehr:bench and posted as transaction bundles. The API runs in a subprocess (uvicorn
ehr.entrypoints.api:create_app --factory, 1 worker, warnings only, no access log, on a free loopback
port) so the gateway is measured over real HTTP; or --api-url points at a running one (--api-pid
gives its pid for the RSS run).

1. Latency, open model: the same pre-generated list of reads (Patient/{id}, Observation/{id}) and
   searches (Observation?patient=&code=, Patient?identifier=sys|val,
   Observation?patient=&_sort=-date&_count=10; random parameters, new list every round) at a
   fixed arrival rate, start times scheduled in advance and latency measured from the scheduled
   start. Direct ({hapi}/{tenant}/..., no auth) and gateway ({api}/fhir/..., bearer token) in
   alternating order, each round. Per round and overall: p50/p95 of reads and searches, errors,
   the gateway/direct ratio (median of the round ratios, spread min..max).
2. Saturation: C closed-loop workers for T seconds per side, sides alternating; req/s and ratio.
3. Streaming: the API process's RSS (/proc/<pid>/status VmRSS sampled every 5 ms, VmHWM reset
   through /proc/<pid>/clear_refs) while downloading a large Bundle (search of blob
   Observations, every page) and a large NDJSON (bulk $export of the tenant's blob Observations:
   kick-off with Prefer: respond-async, poll, download every file) through the gateway, at two
   payload sizes (1x, 4x): memory must not grow with the payload. Plus download time gateway vs
   direct.

Everything is bounded (requests, seconds, in-flight cap) and loopback only; the API subprocess is
stopped at the end. If /fhir does not answer (gateway not deployed) the gateway columns are
skipped and the output says "DIRECT ONLY".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from ehr.core.config import LogSettings, Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import Tenant, User
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient
from ehr.platform.auth.api_keys import create_api_key, revoke_api_key
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant

BENCH_TAG = {"system": "urn:ehr:bench", "code": "fhir-gateway"}
BLOB_TAG = {"system": "urn:ehr:bench", "code": "fhir-gateway-blob"}
MRN_SYSTEM = "urn:ehr:bench:mrn"
BLOB_SYSTEM = "urn:ehr:bench"
LOINC = "http://loinc.org"
CODES = ("8867-4", "8480-6", "8462-4", "29463-7", "8310-5")
FHIR_JSON = "application/fhir+json"
USERNAME = "bench.physician"
REPO = Path(__file__).resolve().parents[1]
MAX_IN_FLIGHT = 256  # open model: arrivals beyond this many outstanding requests are dropped
REQUEST_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------
# Setup: tenant, user, tokens, data
# --------------------------------------------------------------------------------------------


class Identity:
    """Issues access tokens for the benchmark physician (fresh one per phase: 5-minute TTL)."""

    def __init__(self, settings: Settings, slug: str) -> None:
        self.settings = settings
        self.slug = slug
        self.engine = create_engine(settings.db)
        self.sessions = create_sessionmaker(self.engine)
        self.user_id: Any = None
        self.tenant_id: Any = None
        self.key_ids: list[Any] = []

    async def ensure(self, fhir: FhirClient) -> None:
        async with self.sessions() as session, session.begin():
            tenant, _ = await create_tenant(session, fhir, slug=self.slug, name="Benchmark")
            user = await session.scalar(
                select(User).where(User.tenant_id == tenant.id, User.username == USERNAME)
            )
            if user is None:
                user = await create_user(
                    session,
                    tenant_id=tenant.id,
                    username=USERNAME,
                    password="-".join(secrets.token_urlsafe(6) for _ in range(4)),
                    roles=["physician"],
                    granted_by="benchmark",
                    settings=self.settings,
                )
            self.user_id = user.id
            self.tenant_id = tenant.id

    async def export_key(self) -> str:
        """A new API key with system/*.rs (the gateway lets only system clients $export)."""
        async with self.sessions() as session, session.begin():
            key, plaintext = await create_api_key(
                session,
                tenant_id=self.tenant_id,
                name="benchmark bulk export",
                scopes=["system/*.rs"],
                ttl_days=1,
                created_by="benchmark",
            )
            self.key_ids.append(key.id)
            return plaintext

    async def token(self) -> str:
        async with self.sessions() as session, session.begin():
            user = await session.get(User, self.user_id)
            assert user is not None
            assert await session.get(Tenant, user.tenant_id) is not None
            return await issue_access_token_for(session, self.settings, user)

    async def aclose(self) -> None:
        try:
            if self.key_ids:
                async with self.sessions() as session, session.begin():
                    for key_id in self.key_ids:
                        await revoke_api_key(session, key_id)
        finally:
            await self.engine.dispose()


def _patient(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [BENCH_TAG]},
        "identifier": [{"system": MRN_SYSTEM, "value": f"gw-{index:06d}"}],
        "name": [{"family": f"Bench{index:06d}", "given": ["Gateway"]}],
        "gender": ("female", "male")[index % 2],
        "birthDate": f"{1940 + index % 60}-0{1 + index % 9}-1{index % 10}",
    }


def _observation(subject: str, code: str, rng: random.Random) -> dict[str, Any]:
    day = rng.randrange(0, 5 * 365)
    year, rest = divmod(day, 365)
    month, dom = divmod(rest, 31)
    return {
        "resourceType": "Observation",
        "meta": {"tag": [BENCH_TAG]},
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": f"{2020 + year}-{1 + month % 12:02d}-{1 + dom % 28:02d}T10:00:00Z",
        "valueQuantity": {"value": round(rng.uniform(40, 180), 1), "unit": "1"},
    }


def blob_code(size: str, kib: int) -> str:
    return f"blob-{size}-{kib}k"


def _blob(size: str, kib: int, index: int) -> dict[str, Any]:
    word = f"{size}-{index:04d} "
    text = (word * (kib * 1024 // len(word) + 1))[: kib * 1024]
    return {
        "resourceType": "Observation",
        "meta": {"tag": [BLOB_TAG]},
        "status": "final",
        "code": {"coding": [{"system": BLOB_SYSTEM, "code": blob_code(size, kib)}]},
        "valueString": text,
    }


async def _search_all(
    http: httpx.AsyncClient, url: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    next_url: str | None = url + "?" + urllib.parse.urlencode(params)
    for _ in range(1000):
        if next_url is None:
            break
        response = await http.get(next_url, headers={"Accept": FHIR_JSON})
        response.raise_for_status()
        bundle = response.json()
        resources += [entry["resource"] for entry in bundle.get("entry") or []]
        next_url = next(
            (ln["url"] for ln in bundle.get("link", []) if ln["relation"] == "next"), None
        )
    return resources


async def _transaction(http: httpx.AsyncClient, base: str, resources: list[dict[str, Any]]) -> None:
    entries = []
    for resource in resources:
        entry: dict[str, Any] = {
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        }
        if "_fullUrl" in resource:
            entry["fullUrl"] = resource.pop("_fullUrl")
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = await http.post(
        base, json=bundle, headers={"Content-Type": FHIR_JSON}, timeout=120.0
    )
    if response.status_code >= 400:
        raise SystemExit(f"seed transaction failed: {response.status_code} {response.text[:300]}")


@dataclass
class Data:
    patients: list[tuple[str, str]]  # (id, mrn value)
    observations: list[str]
    binaries: dict[str, str] = field(default_factory=dict)  # size -> Binary id (NDJSON)


async def seed(
    http: httpx.AsyncClient, base: str, patients: int, per_patient: int, blobs: dict[str, int]
) -> Data:
    """Create what is missing (idempotent); return the ids the workload uses."""
    started = time.perf_counter()
    tag = f"{BENCH_TAG['system']}|{BENCH_TAG['code']}"
    existing = await _search_all(
        http, f"{base}/Patient", {"_tag": tag, "_elements": "identifier", "_count": "200"}
    )
    have = {
        ident["value"]
        for p in existing
        for ident in p.get("identifier", [])
        if ident.get("system") == MRN_SYSTEM
    }
    missing = [i for i in range(patients) if f"gw-{i:06d}" not in have]
    rng = random.Random(4)
    for start in range(0, len(missing), 25):
        resources: list[dict[str, Any]] = []
        for index in missing[start : start + 25]:
            full_url = f"urn:uuid:{secrets.token_hex(16)}"
            patient = _patient(index) | {"_fullUrl": full_url}
            resources.append(patient)
            resources += [
                _observation(full_url, CODES[k % len(CODES)], rng) for k in range(per_patient)
            ]
        await _transaction(http, base, resources)
    for size, kib in blobs.items():
        code = f"{BLOB_SYSTEM}|{blob_code(size, kib)}"
        response = await http.get(f"{base}/Observation", params={"code": code, "_summary": "count"})
        response.raise_for_status()
        for start in range(response.json().get("total", 0), 200, 20):
            await _transaction(http, base, [_blob(size, kib, i) for i in range(start, start + 20)])
    binaries = {}
    for size, kib in blobs.items():
        binary_tag = {"system": BLOB_TAG["system"], "code": f"ndjson-{size}-{kib}k"}
        found = await _search_all(
            http,
            f"{base}/Binary",
            {"_tag": f"{binary_tag['system']}|{binary_tag['code']}", "_elements": "id"},
        )
        if found:
            binaries[size] = found[0]["id"]
            continue
        lines = [json.dumps(_blob(size, kib, i) | {"id": f"b{i}"}) for i in range(200)]
        payload = ("\n".join(lines) + "\n").encode()
        binary = {
            "resourceType": "Binary",
            "meta": {"tag": [binary_tag]},
            "contentType": "application/fhir+ndjson",
            "data": base64.b64encode(payload).decode(),
        }
        response = await http.post(
            f"{base}/Binary", json=binary, headers={"Content-Type": FHIR_JSON}, timeout=120.0
        )
        if response.status_code >= 400:
            raise SystemExit(f"seed Binary failed: {response.status_code} {response.text[:300]}")
        binaries[size] = response.json()["id"]
    if missing:
        existing = await _search_all(
            http, f"{base}/Patient", {"_tag": tag, "_elements": "identifier", "_count": "200"}
        )
    by_mrn = {
        ident["value"]: p["id"]
        for p in existing
        for ident in p.get("identifier", [])
        if ident.get("system") == MRN_SYSTEM
    }
    chosen = [(by_mrn[f"gw-{i:06d}"], f"gw-{i:06d}") for i in range(patients)]
    observations = await _search_all(
        http, f"{base}/Observation", {"_tag": tag, "_elements": "id", "_count": "200"}
    )
    print(
        f"data: {len(chosen)} patients ({len(missing)} created now), "
        f"{len(observations)} observations, blobs {blobs} KiB x 200 each "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return Data(patients=chosen, observations=[o["id"] for o in observations], binaries=binaries)


# --------------------------------------------------------------------------------------------
# The API subprocess
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def api_subprocess(port: int, log: Path) -> Any:
    env = dict(os.environ)
    # The benchmark is one client far above any human's rate: lift the per-client limit (the
    # limiter still runs: its Redis call is part of what is measured).
    env.setdefault("EHR_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000000")
    # Warnings only (as uvicorn's --log-level): the app's own per-request access log is off too.
    env.setdefault("EHR_LOG__LEVEL", "WARNING")
    env["EHR_GATEWAY__PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "uvicorn", "ehr.entrypoints.api:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out)  # noqa: S603
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def wait_ready(
    http: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{url}/ready", timeout=2.0)).status_code == 200:
                return
        await asyncio.sleep(0.3)
    raise SystemExit(f"the API at {url} was not ready within 60 s")


# --------------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    base: str  # ends with '/'
    client: httpx.AsyncClient
    token: Callable[[], str] | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token()}"
        return headers


def workload(data: Data, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` (kind, relative url) pairs: half reads, half searches, random parameters."""
    items: list[tuple[str, str]] = []
    for _ in range(count):
        patient_id, mrn = rng.choice(data.patients)
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                items.append(("read", f"Patient/{patient_id}"))
            else:
                items.append(("read", f"Observation/{rng.choice(data.observations)}"))
            continue
        shape = rng.randrange(3)
        if shape == 0:
            code = urllib.parse.quote(f"{LOINC}|{rng.choice(CODES)}", safe="")
            items.append(("search", f"Observation?patient={patient_id}&code={code}"))
        elif shape == 1:
            ident = urllib.parse.quote(f"{MRN_SYSTEM}|{mrn}", safe="")
            items.append(("search", f"Patient?identifier={ident}"))
        else:
            items.append(("search", f"Observation?patient={patient_id}&_sort=-date&_count=10"))
    return items


@dataclass
class Sample:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "search": []})
    errors: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def _send(target: Target, url: str, headers: dict[str, str]) -> int:
    async with target.client.stream("GET", target.base + url, headers=headers) as response:
        async for _chunk in response.aiter_raw():
            pass
        return response.status_code


async def open_model(target: Target, items: list[tuple[str, str]], rate: float) -> Sample:
    """Send ``items`` at ``rate``/s on a fixed schedule; latency from the scheduled start."""
    sample = Sample()
    headers = target.headers()
    in_flight = 0
    loop = asyncio.get_running_loop()

    async def one(kind: str, url: str, scheduled: float) -> None:
        nonlocal in_flight
        try:
            status = await _send(target, url, headers)
            if status >= 400:
                sample.error(str(status))
            else:
                sample.latencies[kind].append((loop.time() - scheduled) * 1000)
        except httpx.HTTPError as exc:
            sample.error(type(exc).__name__)
        finally:
            in_flight -= 1

    tasks = []
    start = loop.time() + 0.05
    for index, (kind, url) in enumerate(items):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= MAX_IN_FLIGHT:
            sample.dropped += 1
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(kind, url, scheduled)))
    await asyncio.gather(*tasks)
    return sample


async def closed_loop(
    target: Target, items: list[tuple[str, str]], workers: int, seconds: float
) -> tuple[float, int]:
    """(completed 2xx requests per second, errors) with ``workers`` back-to-back loops."""
    headers = target.headers()
    deadline = time.perf_counter() + seconds
    position = iter(range(10**9))
    done = 0
    errors = 0

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            _kind, url = items[next(position) % len(items)]
            try:
                status = await _send(target, url, headers)
            except httpx.HTTPError:
                errors += 1
                continue
            if status >= 400:
                errors += 1
            else:
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done / (time.perf_counter() - started), errors


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: list[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "n/a"
    return f"{statistics.median(finite):5.2f} ({min(finite):.2f}..{max(finite):.2f})"


# --------------------------------------------------------------------------------------------
# Streaming and RSS
# --------------------------------------------------------------------------------------------


def _status_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class RssSampler:
    """Peak VmRSS of ``pid`` sampled every 5 ms in a thread (and VmHWM after a reset)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.hwm_reset = False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kib(self.pid)["VmRSS"])
            self._stop.wait(0.005)

    def __enter__(self) -> RssSampler:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
            self.hwm_reset = True
        self.before = _status_kib(self.pid)["VmRSS"]
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        status = _status_kib(self.pid)
        self.after = status["VmRSS"]
        if self.hwm_reset:
            self.peak = max(self.peak, status["VmHWM"])


async def download(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """(bytes, the first 64 KiB) of one response body, streamed."""
    size = 0
    head = b""
    async with client.stream("GET", url, headers=headers, timeout=120.0) as response:
        if response.status_code >= 400:
            body = await response.aread()
            raise RuntimeError(f"GET {url} -> {response.status_code}: {body[:200]!r}")
        async for chunk in response.aiter_bytes():
            if len(head) < 65536:
                head += chunk[: 65536 - len(head)]
            size += len(chunk)
    return size, head


async def bundle_pages(target: Target, code: str) -> tuple[int, int, float]:
    """Download every page of the blob search (bytes, pages, seconds), bodies streamed."""
    started = time.perf_counter()
    url: str | None = (
        target.base + f"Observation?code={urllib.parse.quote(code, safe='')}&_count=200"
    )
    total = pages = 0
    headers = target.headers()
    while url is not None and pages < 50:
        async with target.client.stream("GET", url, headers=headers, timeout=120.0) as response:
            if response.status_code >= 400:
                raise RuntimeError(f"GET {url} -> {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                body += chunk
        pages += 1
        bundle = json.loads(bytes(body))
        del body
        url = next((ln["url"] for ln in bundle.get("link", []) if ln["relation"] == "next"), None)
    return total, pages, time.perf_counter() - started


async def bulk_export(target: Target, type_filter: str, max_wait: float) -> list[str]:
    """Kick off a tenant $export of the blob Observations, poll, return the file URLs."""
    params = urllib.parse.urlencode({"_type": "Observation", "_typeFilter": type_filter})
    headers = target.headers() | {"Prefer": "respond-async"}
    kick = await target.client.get(f"{target.base}$export?{params}", headers=headers)
    if kick.status_code != 202:
        raise RuntimeError(f"$export kick-off -> {kick.status_code}: {kick.text[:200]}")
    poll = kick.headers["Content-Location"]
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        status = await target.client.get(poll, headers=target.headers())
        if status.status_code == 200:
            return [o["url"] for o in status.json().get("output", [])]
        if status.status_code != 202:
            raise RuntimeError(f"$export poll -> {status.status_code}: {status.text[:300]}")
        await asyncio.sleep(1.0)
    raise RuntimeError(f"$export not complete within {max_wait:.0f} s")


# --------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------


async def latency_phase(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
) -> dict[str, dict[str, list[float]]]:
    rng = random.Random(args.seed)
    per_round = int(args.rate * args.seconds)
    print(
        f"\n== 1. latency, open model: {args.rate:g} req/s x {args.seconds:g} s = {per_round} "
        f"requests per side per round (half reads, half searches), {args.rounds} rounds"
    )
    await refresh()
    for target in targets:  # warm-up: JVM, pools, connections
        await open_model(target, workload(data, int(args.rate * args.warmup), rng), args.rate)
    results: dict[str, dict[str, list[float]]] = {
        t.name: {"read_p50": [], "read_p95": [], "search_p50": [], "search_p95": []}
        for t in targets
    }
    for round_index in range(args.rounds):
        await refresh()
        items = workload(data, per_round, rng)
        order = targets if round_index % 2 == 0 else targets[::-1]
        for target in order:
            sample = await open_model(target, items, args.rate)
            row = results[target.name]
            for kind in ("read", "search"):
                row[f"{kind}_p50"].append(pct(sample.latencies[kind], 50))
                row[f"{kind}_p95"].append(pct(sample.latencies[kind], 95))
            errors = ", ".join(f"{k}:{v}" for k, v in sorted(sample.errors.items())) or "0"
            print(
                f"  round {round_index + 1} {target.name:<8} "
                f"read p50 {row['read_p50'][-1]:7.2f} p95 {row['read_p95'][-1]:7.2f} ms | "
                f"search p50 {row['search_p50'][-1]:7.2f} p95 {row['search_p95'][-1]:7.2f} ms | "
                f"errors {errors} dropped {sample.dropped}",
                flush=True,
            )
    print("\n  overall (ms; median of round values, spread min..max of rounds)")
    for target in targets:
        row = results[target.name]
        print(
            f"  {target.name:<8} "
            + "  ".join(f"{metric} {spread(values)}" for metric, values in row.items())
        )
    if len(targets) == 2:
        direct, gateway = (results[t.name] for t in targets)
        print("  gateway/direct, median of round ratios (spread):")
        for metric in direct:
            ratios = [g / d for g, d in zip(gateway[metric], direct[metric], strict=True)]
            print(f"    {metric:<11} {spread(ratios)}")
    return results


async def saturation_phase(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
) -> None:
    print(
        f"\n== 2. saturation: {args.workers} closed-loop workers x {args.sat_seconds:g} s per "
        f"side, {args.sat_rounds} alternating rounds (same mixed workload)"
    )
    items = workload(data, 5000, random.Random(args.seed + 1))
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    for round_index in range(args.sat_rounds):
        await refresh()
        order = targets if round_index % 2 == 0 else targets[::-1]
        for target in order:
            rate, errors = await closed_loop(target, items, args.workers, args.sat_seconds)
            rates[target.name].append(rate)
            print(f"  round {round_index + 1} {target.name:<8} {rate:7.1f} req/s  errors {errors}")
    for name, values in rates.items():
        print(f"  {name:<8} req/s {spread(values)}")
    if len(targets) == 2:
        ratios = [g / d for d, g in zip(*rates.values(), strict=True)]
        print(f"  throughput gateway/direct: {spread(ratios)}")


async def streaming_phase(
    args: argparse.Namespace,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
    api_pid: int | None,
    identity: Identity,
    data: Data,
) -> None:
    sizes = list(BLOBS)
    print(
        "\n== 3. streaming: blob Observations, 200 per size, "
        + ", ".join(f"{s}={BLOBS[s]} KiB" for s in sizes)
        + " each; RSS of the API process (KiB)"
    )
    if api_pid is None:
        print("  no API pid (--api-url without --api-pid): RSS not measured")
    await refresh()
    gateway = next((t for t in targets if t.name == "gateway"), None)
    direct = targets[0]
    # Bundle: every page of `Observation?code=blob-<size>&_count=200`; sizes alternate, 3 times.
    for size in sizes * 3:
        code = f"{BLOB_SYSTEM}|{blob_code(size, BLOBS[size])}"
        size_bytes, pages, direct_s = await bundle_pages(direct, code)
        line = (
            f"  Bundle {size}: {size_bytes / 2**20:6.1f} MiB in {pages} page(s); "
            f"direct {direct_s:5.2f} s"
        )
        if gateway is not None:
            sampler = RssSampler(api_pid) if api_pid else None
            with sampler or contextlib.nullcontext():
                gw_bytes, gw_pages, gw_s = await bundle_pages(gateway, code)
            _record(("Bundle", size, "direct"), direct_s, size_bytes, None)
            _record(("Bundle", size, "gateway"), gw_s, gw_bytes, sampler)
            line += (
                f"; gateway {gw_bytes / 2**20:6.1f} MiB {gw_pages} page(s) {gw_s:5.2f} s "
                f"(x{gw_s / direct_s:.2f})"
            )
            if sampler is not None:
                line += (
                    f"; RSS before {sampler.before} peak {sampler.peak} after {sampler.after} "
                    f"(peak-before {sampler.peak - sampler.before})"
                )
        print(line, flush=True)
    # NDJSON: bulk $export of the tenant's blob Observations of one size. The gateway lets only
    # system clients export: an API key with system/*.rs (revoked at the end).
    export_gateway = None
    if gateway is not None:
        key = await identity.export_key()
        export_gateway = Target("gateway", gateway.base, gateway.client, lambda: key)
    exported = args.export_wait > 0
    if not exported:
        print("  $export skipped (--export-wait 0)")
    for size in sizes if exported else []:
        type_filter = f"Observation?code={BLOB_SYSTEM}|{blob_code(size, BLOBS[size])}"
        for target in [direct, *([export_gateway] if export_gateway else [])]:
            try:
                started = time.perf_counter()
                files = await bulk_export(target, type_filter, args.export_wait)
                job_s = time.perf_counter() - started
            except (RuntimeError, httpx.HTTPError, KeyError) as exc:
                print(
                    f"  NDJSON {size} {target.name}: $export FAILED: {' '.join(str(exc).split())}"
                )
                exported = False
                break
            await ndjson_download(
                f"NDJSON $export {size}", target, files, api_pid, target is export_gateway, job_s
            )
        if not exported:
            break
    if exported:
        streaming_summary()
        return
    # The same download path as an export file (a Binary read as application/fhir+ndjson),
    # on NDJSON Binaries the setup stored: the 200 blob Observations of each size, one per line.
    print("  (no export files: the NDJSON run downloads the seeded NDJSON Binaries instead)")
    # Through the gateway with the export client's API key (a physician may not read Binary).
    for size in sizes * 3:
        binary = f"Binary/{data.binaries[size]}"
        for target in [direct, *([export_gateway] if export_gateway else [])]:
            await ndjson_download(
                f"NDJSON Binary {size}", target, [target.base + binary], api_pid,
                target is export_gateway, None,
            )  # fmt: skip
    streaming_summary()


async def ndjson_download(
    label: str,
    target: Target,
    urls: list[str],
    api_pid: int | None,
    sample_rss: bool,
    job_s: float | None,
) -> None:
    headers = target.headers() | {"Accept": "application/fhir+ndjson"}
    sampler = RssSampler(api_pid) if (api_pid and sample_rss) else None
    started = time.perf_counter()
    total = 0
    first = b""
    with sampler or contextlib.nullcontext():
        for url in urls:
            try:
                got, head = await download(target.client, url, headers)
            except (RuntimeError, httpx.HTTPError) as exc:
                print(f"  {label} {target.name}: FAILED: {' '.join(str(exc).split())[:300]}")
                return
            total += got
            first = first or head
    took = time.perf_counter() - started
    _record(("NDJSON", label.rsplit(" ", 1)[-1], target.name), took, total, sampler)
    ndjson = first.startswith(b'{"resourceType"')
    line = (
        f"  {label} {target.name:<8}: "
        + (f"job {job_s:5.1f} s; " if job_s is not None else "")
        + f"{len(urls)} file(s), {total / 2**20:6.1f} MiB in {took:5.2f} s "
        f"({total / 2**20 / took:6.1f} MiB/s){'' if ndjson else ' NOT NDJSON'}"
    )
    if sampler is not None:
        line += (
            f"; RSS before {sampler.before} peak {sampler.peak} after {sampler.after} "
            f"(peak-before {sampler.peak - sampler.before})"
        )
    print(line, flush=True)


BLOBS = {"1x": 40, "4x": 160}  # KiB per blob Observation; 200 of each
# (kind, size, target) -> [(seconds, bytes, rss peak - before in KiB or None)]
STREAMS: dict[tuple[str, str, str], list[tuple[float, int, int | None]]] = {}


def _record(key: tuple[str, str, str], seconds: float, size: int, sampler: Any) -> None:
    growth = sampler.peak - sampler.before if sampler is not None else None
    STREAMS.setdefault(key, []).append((seconds, size, growth))


def streaming_summary() -> None:
    print("\n  streaming summary (median of repeats; RSS growth = max peak-before, KiB)")
    for kind in ("Bundle", "NDJSON"):
        for size in BLOBS:
            direct = STREAMS.get((kind, size, "direct"), [])
            gateway = STREAMS.get((kind, size, "gateway"), [])
            if not direct:
                continue
            line = f"    {kind:<6} {size}: {direct[0][1] / 2**20:6.1f} MiB"
            if gateway:
                ratios = [g[0] / d[0] for d, g in zip(direct, gateway, strict=False)]
                growth = [g[2] for g in gateway if g[2] is not None]
                line += f"; time gateway/direct {spread(ratios)}"
                if growth:
                    line += f"; gateway RSS growth {max(growth)} KiB"
            print(line)


def _revision() -> str:
    """The commit measured, and whether backend/ has uncommitted changes (they run too)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "backend"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted backend changes" if dirty else head


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    # This process's own logs (setup through the ehr services): warnings only, human-readable.
    configure_logging(LogSettings(level="WARNING", json_format=False))
    hapi = settings.fhir.base_url.rstrip("/")
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=5.0)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; HAPI {hapi}; "
        f"tenant {args.tenant}; code {_revision()}"
    )
    identity = Identity(settings, args.tenant)
    async with (
        FhirClient(settings.fhir) as fhir,
        httpx.AsyncClient(limits=limits, timeout=timeout) as direct_http,
        httpx.AsyncClient(limits=limits, timeout=timeout) as gateway_http,
    ):
        try:
            await identity.ensure(fhir)
            tenant_base = f"{hapi}/{args.tenant}"
            data = await seed(direct_http, tenant_base, args.patients, args.observations, BLOBS)
            token = {"value": await identity.token()}

            async def refresh() -> None:
                token["value"] = await identity.token()

            with contextlib.ExitStack() as stack:
                process = None
                api_url = args.api_url
                api_pid = args.api_pid
                if api_url is None:
                    port = _free_port()
                    log = Path(tempfile.gettempdir()) / f"bench-fhir-gateway-api-{port}.log"
                    process = stack.enter_context(api_subprocess(port, log))
                    api_url = f"http://127.0.0.1:{port}"
                    api_pid = process.pid
                    print(f"API: pid {process.pid} on {api_url} (log {log})")
                api_url = api_url.rstrip("/")
                await wait_ready(gateway_http, api_url, process)
                direct = Target("direct", tenant_base + "/", direct_http)
                gateway = Target(
                    "gateway", api_url + "/fhir/", gateway_http, lambda: token["value"]
                )
                probe = f"Patient/{data.patients[0][0]}"
                try:
                    status = await _send(gateway, probe, gateway.headers())
                except httpx.HTTPError as exc:
                    status = f"{type(exc).__name__}"  # type: ignore[assignment]
                targets = [direct]
                if status == 200:
                    targets.append(gateway)
                    print(f"gateway: GET {api_url}/fhir/{probe} -> 200 (bearer token)")
                else:
                    print(
                        f"\n*** DIRECT ONLY: GET {api_url}/fhir/{probe} -> {status}; the gateway "
                        "is not deployed there. Gateway figures and ratios are NOT measured. ***"
                    )
                await latency_phase(args, data, targets, refresh)
                await saturation_phase(args, data, targets, refresh)
                if not args.skip_streaming:
                    await streaming_phase(args, targets, refresh, api_pid, identity, data)
        finally:
            await identity.aclose()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-gateway", help="benchmark tenant slug")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--observations", type=int, default=5, help="per patient")
    parser.add_argument("--rate", type=float, default=40.0, help="arrivals per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds per side before")
    parser.add_argument("--workers", type=int, default=16, help="saturation concurrency")
    parser.add_argument("--sat-seconds", type=float, default=8.0)
    parser.add_argument("--sat-rounds", type=int, default=3)
    parser.add_argument(
        "--export-wait", type=float, default=150.0, help="max s per $export (0: skip)"
    )
    parser.add_argument("--skip-streaming", action="store_true")
    parser.add_argument("--api-url", help="use this running API instead of starting one")
    parser.add_argument("--api-pid", type=int, help="its pid, for the RSS measurement")
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()
    if not 0 < args.rate <= 500 or not 0 < args.seconds <= 120 or not 1 <= args.rounds <= 15:
        parser.error("bounds: 0 < rate <= 500, 0 < seconds <= 120, 1 <= rounds <= 15")
    if not 1 <= args.workers <= 128 or not 0 < args.sat_seconds <= 120:
        parser.error("bounds: 1 <= workers <= 128, 0 < sat-seconds <= 120")
    return args


def main() -> None:
    asyncio.run(run(_parse()))


if __name__ == "__main__":
    main()
