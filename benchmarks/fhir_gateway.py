"""The authenticated FHIR gateway (/fhir) vs HAPI direct, same run (issues 4 and 13).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/fhir_gateway.py \
        [--api-workers 1] [--rate 40] [--seconds 10] [--rounds 5] [--concurrency 16,64] [--pin]

Load comes from vegeta (a Go load generator, built into .stack/bin on first use: see
benchmarks/load/vegeta.py), not from this Python process, so the client is not what limits the
direct side. PostgreSQL runs with production durability for the run (synchronous_commit=on through
ALTER SYSTEM + reload, restored at the end; the header prints what a new session sees). The API
runs as production starts it: ``ehr serve --workers N`` (uvicorn workers, uvloop, httptools).

Setup (idempotent): a benchmark tenant (HAPI partition) and a physician user made through the real
code paths (ehr.platform.tenancy.create_tenant, ehr.platform.auth.service.create_user), access
tokens from ehr.platform.auth.tokens.issue_access_token_for (re-issued every phase: they live 5
minutes); N patients with a few Observations each, and 2 x 200 large "blob" Observations for the
streaming run, all tagged urn:ehr:bench and posted as transaction bundles.

1. Cost per request, one request at a time per shape (Patient/{id}, Observation/{id},
   Observation?patient=&code=, Patient?identifier=, Observation?patient=&_sort=-date&_count=10):
   CPU ms of the API (all worker processes), HAPI, PostgreSQL (all backends) and Redis per
   request, PostgreSQL statements per request per database (pg_stat_statements, BEGIN/COMMIT
   included), Redis commands and round trips per request; the gateway's statement list.
2. Latency, open model: the same pre-generated mixed list at a fixed arrival rate (vegeta
   -rate), direct ({hapi}/{tenant}/..., no auth) and gateway ({api}/fhir/..., bearer token) in
   alternating order, each round; p50/p95 of reads and searches from each request's scheduled
   start; gateway/direct as the median of the round ratios (spread); CPU and counts per request.
3. Saturation: closed loop (vegeta -rate 0) at each --concurrency level, sides alternating;
   req/s, p95 and the ratio; CPU per request. --pin repeats the first level with HAPI on CPU 0
   and the API on CPU 1.
4. Streaming: RSS of the API processes (sum of VmRSS over the parent and its workers, sampled
   every 5 ms, or the sum of VmHWM after a reset when larger) while downloading a large Bundle
   and a large NDJSON through the gateway, at two payload sizes: memory must not grow with the
   payload. Plus download time gateway vs direct.

Everything is bounded and loopback only; the API subprocess is stopped at the end. If /fhir does
not answer (gateway not deployed) the gateway columns are skipped and the output says "DIRECT ONLY".
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import json
import math
import os
import platform
import random
import secrets
import shlex
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
import redis as redis_lib
from load import probes, vegeta
from sqlalchemy import select

import ehr
from ehr.core.config import LogSettings, Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import Tenant, User
from ehr.core.observability import configure_logging
from ehr.devstack.processes import listening_pids
from ehr.devstack.stack import Stack
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
# The API subprocess: started as production starts it
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_command(port: int, workers: int) -> list[str]:
    """``ehr serve`` (uvicorn workers, uvloop, httptools, no access log), as production runs."""
    ehr = Path(sys.executable).with_name("ehr")
    return [
        str(ehr),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


@contextlib.contextmanager
def api_subprocess(port: int, workers: int, log: Path) -> Any:
    env = dict(os.environ)
    # The benchmark is one client far above any human's rate: lift the per-client limit (the
    # limiter still runs: its Redis call is part of what is measured).
    env.setdefault("EHR_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000000")
    # Warnings only: the app's own per-request access log is off too.
    env.setdefault("EHR_LOG__LEVEL", "WARNING")
    env["EHR_GATEWAY__PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            api_command(port, workers), env=env, cwd=REPO, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in probes.descendants(process.pid)[1:]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(timeout=10)


async def wait_ready(
    http: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes] | None, workers: int
) -> None:
    """/ready answers, and (started here) every worker process is up."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{url}/ready", timeout=2.0)).status_code == 200 and (
                process is None or workers == 1 or len(_worker_pids(process.pid)) >= workers
            ):
                return
        await asyncio.sleep(0.3)
    raise SystemExit(f"the API at {url} was not ready within 90 s")


def _worker_pids(root: int) -> list[int]:
    """uvicorn's worker processes below ``root`` (multiprocessing children running the app)."""
    found = []
    for pid in probes.descendants(root)[1:]:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                found.append(pid)
    return found


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


SHAPES = (  # as the output names them
    "Patient/{id}",
    "Observation/{id}",
    "Observation?patient&code",
    "Patient?identifier",
    "Observation?patient&_sort=-date&_count=10",
)


def request(data: Data, shape: int, rng: random.Random) -> tuple[str, str]:
    """(kind, relative url) of one request of ``SHAPES[shape]`` with random parameters."""
    patient_id, mrn = rng.choice(data.patients)
    if shape == 0:
        return "read", f"Patient/{patient_id}"
    if shape == 1:
        return "read", f"Observation/{rng.choice(data.observations)}"
    if shape == 2:
        code = urllib.parse.quote(f"{LOINC}|{rng.choice(CODES)}", safe="")
        return "search", f"Observation?patient={patient_id}&code={code}"
    if shape == 3:
        ident = urllib.parse.quote(f"{MRN_SYSTEM}|{mrn}", safe="")
        return "search", f"Patient?identifier={ident}"
    return "search", f"Observation?patient={patient_id}&_sort=-date&_count=10"


def workload(data: Data, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` (kind, relative url) pairs: half reads, half searches, random parameters."""
    return [
        request(data, rng.randrange(2) if rng.random() < 0.5 else 2 + rng.randrange(3), rng)
        for _ in range(count)
    ]


def as_requests(target: Target, items: list[tuple[str, str]]) -> list[vegeta.Request]:
    return [vegeta.Request(kind, target.base + url) for kind, url in items]


async def _send(target: Target, url: str, headers: dict[str, str]) -> int:
    async with target.client.stream("GET", target.base + url, headers=headers) as response:
        async for _chunk in response.aiter_raw():
            pass
        return response.status_code


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
    """Peak of the summed VmRSS of ``pids`` (the API's parent and workers), sampled every 5 ms in
    a thread; after the block, the sum of VmHWM (reset at the start) when larger, so a spike
    between two samples is not missed (an upper bound with several workers)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.hwm_reset = False

    def _sum(self, key: str) -> int:
        total = 0
        for pid in self.pids:
            with contextlib.suppress(OSError, KeyError):
                total += _status_kib(pid)[key]
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sum("VmRSS"))
            self._stop.wait(0.005)

    def __enter__(self) -> RssSampler:
        self.hwm_reset = True
        for pid in self.pids:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
            except OSError:
                self.hwm_reset = False
        self.before = self._sum("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = self._sum("VmRSS")
        if self.hwm_reset:
            self.peak = max(self.peak, self._sum("VmHWM"))


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
# What each process spent per request
# --------------------------------------------------------------------------------------------

GROUPS = ("API", "HAPI", "PG", "Redis")


@dataclass
class Spent:
    """What the servers did during one side's phases (added over rounds)."""

    requests: int = 0
    cpu_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(GROUPS, 0.0))
    loadgen_ms: float = 0.0
    busy: list[float] = field(default_factory=list)
    statements: dict[str, dict[str, int]] = field(default_factory=dict)  # db -> query -> calls
    redis: dict[str, int] = field(default_factory=dict)

    def add(self, other: Spent) -> None:
        self.requests += other.requests
        for name, value in other.cpu_ms.items():
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + value
        self.loadgen_ms += other.loadgen_ms
        self.busy += other.busy
        for db, queries in other.statements.items():
            mine = self.statements.setdefault(db, {})
            for query, calls in queries.items():
                mine[query] = mine.get(query, 0) + calls
        for key, value in other.redis.items():
            self.redis[key] = self.redis.get(key, 0) + value

    def per(self, value: float) -> float:
        return value / self.requests if self.requests else math.nan

    def db_calls(self, db: str) -> float:
        return self.per(sum(self.statements.get(db, {}).values()))


class Meter:
    """Snapshots of CPU (/proc), PostgreSQL statements and Redis counters around a phase."""

    def __init__(
        self, processes: probes.ProcessGroups, pg: probes.Postgres | None, redis: Any
    ) -> None:
        self.processes = processes
        self.pg = pg if pg is not None and pg.statements_available() else None
        self.redis = redis

    @contextlib.contextmanager
    def measure(self) -> Any:
        """Yields a Spent whose counters are filled in when the block ends (set ``requests``)."""
        spent = Spent()
        if self.pg is not None:
            self.pg.reset_statements()
        redis_before = probes.redis_counters(self.redis) if self.redis is not None else {}
        restarts = len(self.processes.restarted)
        cpu_before = probes.cpu_snapshot(self.processes)
        yield spent
        cpu_after = probes.cpu_snapshot(self.processes)
        for change in self.processes.restarted[restarts:]:
            print(f"  !!! {change}: restarted by someone during this phase; its figures are off")
        used, busy = probes.cpu_delta(cpu_before, cpu_after)
        spent.cpu_ms = used
        spent.busy.append(busy)
        if self.redis is not None:
            spent.redis = probes.delta(redis_before, probes.redis_counters(self.redis))
            # The two INFO calls of a snapshot are ours, not the API's.
            spent.redis.pop("cmd:info", None)
            for key in ("total_commands_processed", "total_reads_processed"):
                if key in spent.redis:
                    spent.redis[key] -= 2
        if self.pg is not None:
            spent.statements = self.pg.statements()


LABEL = 62
W = 7  # width of a figure


def spent_header(databases: tuple[str, ...]) -> str:
    """Two header lines: the groups, then the columns of :func:`spent_line`."""
    first = (
        f"    {'':<{LABEL}} {'':>6}  {'CPU ms per request':<{W * 5 + 5}}  "
        f"{'PG stmts/req':<{W * len(databases)}}  Redis/req"
    )
    second = (
        f"    {'':<{LABEL}} {'n':>6}  "
        + "".join(f"{g:>{W}}" for g in (*GROUPS, "vegeta"))
        + f"{'busy':>5}  "
        + "".join(f"{db:>{W}}" for db in databases)
        + f"  {'cmds':>{W}}{'trips':>{W}}"
    )
    return first + "\n" + second


def spent_line(label: str, spent: Spent, databases: tuple[str, ...]) -> str:
    """One row: requests, CPU ms per request of each server (+ the load generator), machine busy
    (all CPUs), PostgreSQL statements per request per database, Redis commands and round trips."""
    busy = statistics.mean(spent.busy) if spent.busy else math.nan
    cpu = "".join(f"{spent.per(spent.cpu_ms.get(g, 0.0)):{W}.2f}" for g in GROUPS)
    loadgen = f"{spent.per(spent.loadgen_ms):{W}.2f}" if spent.loadgen_ms else f"{'-':>{W}}"
    statements = "".join(f"{spent.db_calls(db):{W}.2f}" for db in databases)
    redis_cmds = spent.per(spent.redis.get("total_commands_processed", 0))
    redis_trips = spent.per(spent.redis.get("total_reads_processed", 0))
    return (
        f"    {label:<{LABEL}} {spent.requests:>6}  {cpu}{loadgen}{busy:5.0%}  {statements}"
        f"  {redis_cmds:{W}.2f}{redis_trips:{W}.2f}"
    )


def statement_list(spent: Spent, db: str, limit: int) -> list[str]:
    queries = sorted(spent.statements.get(db, {}).items(), key=lambda kv: -kv[1])
    return [
        f"        {spent.per(calls):5.2f}  {query[:120]}"
        for query, calls in queries[:limit]
        if spent.per(calls) >= 0.02
    ]


# --------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------


PROBLEMS: list[str] = []  # what makes this run's figures unfit to quote (printed at the end)


def note_errors(where: str, result: vegeta.Result) -> str:
    """The errors of one attack as text ("0" when none); any error is a problem of the run."""
    if not result.errors:
        return "0"
    text = ", ".join(f"{k}:{v}" for k, v in sorted(result.errors.items()))
    PROBLEMS.append(f"{where}: errors {text}")
    return text


async def wait_answering(http: httpx.AsyncClient, urls: list[str], limit_s: float = 180) -> None:
    """Every URL answers 200 (waiting up to ``limit_s``, saying so), else the run stops."""
    deadline = time.monotonic() + limit_s
    for url in urls:
        said = False
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url, timeout=5.0)).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {limit_s:.0f} s: run stopped")
            if not said:
                print(f"  ... waiting for {url} (not answering)", flush=True)
                PROBLEMS.append(f"{url} stopped answering during the run")
                said = True
            await asyncio.sleep(1.0)


def verdict(processes: probes.ProcessGroups) -> None:
    problems = PROBLEMS + [f"{change} during the run" for change in processes.restarted]
    if not problems:
        print("\nrun: CLEAN (no errors, no server restarted); mind the background (phase 0)")
        return
    print("\nrun: NOT CLEAN — do not quote these figures:")
    for problem in problems[:20]:
        print(f"  - {problem}")


async def background(args: argparse.Namespace, meter: Meter) -> None:
    """What the shared stack does with nothing sent by the benchmark (others' tests, timers):
    the counters below are server-wide, so this is the noise floor of every figure."""
    if args.idle <= 0:
        return
    with meter.measure() as idle:
        await asyncio.sleep(args.idle)
    idle.requests = max(1, round(args.idle))
    print(
        f"\n== 0. background: {args.idle:g} s with nothing sent by the benchmark, PER SECOND "
        "(the stack is shared: this much of every count below is someone else's)"
    )
    databases = ("ehr", "hapi")
    print(spent_header(databases))
    print(spent_line("idle, per second", idle, databases))


async def inventory_phase(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    meter: Meter,
    refresh: Callable[[], Awaitable[None]],
) -> None:
    """One request at a time, per request shape: what each request costs each server."""
    print(
        f"\n== 1. cost per request, one at a time: {args.inventory} requests per shape and side "
        "(Python client: its p50, ms, is for orientation; the CPU, statement and command counts "
        "are what this phase is for)"
    )
    if meter.pg is None:
        print(
            "  PostgreSQL statements: n/a (pg_stat_statements not loaded: the running cluster was"
            " started before the devstack preloaded it; restart the stack to get them)"
        )
    rng = random.Random(args.seed + 2)
    databases = ("ehr", "hapi")
    print(spent_header(databases))
    await refresh()
    for target in targets:  # warm-up of every shape
        for shape in range(len(SHAPES)):
            for _ in range(10):
                await _send(target, request(data, shape, rng)[1], target.headers())
    details: list[tuple[str, Spent]] = []
    for shape, name in enumerate(SHAPES):
        items = [request(data, shape, rng)[1] for _ in range(args.inventory)]
        for target in targets:
            headers = target.headers()
            latencies = []
            errors = 0
            with meter.measure() as spent:
                for url in items:
                    started = time.perf_counter()
                    status = await _send(target, url, headers)
                    latencies.append((time.perf_counter() - started) * 1000)
                    errors += status >= 400
            spent.requests = len(items) - errors
            label = f"{target.name:<7} {name:<41} p50 {pct(latencies, 50):5.2f}"
            print(spent_line(label, spent, databases) + (f"  errors {errors}" if errors else ""))
            if target.name == "gateway":
                details.append((name, spent))
    for name, spent in details[: (len(details) if args.show_statements else 1)]:
        print(f"    gateway {name}: PostgreSQL statements per request (database ehr)")
        print("\n".join(statement_list(spent, "ehr", 20)) or "        (none)")
        commands = sorted(
            (k.removeprefix("cmd:"), v) for k, v in spent.redis.items() if k.startswith("cmd:")
        )
        print(
            "      Redis commands per request: "
            + (", ".join(f"{k} {spent.per(v):.2f}" for k, v in commands) or "none")
            + f"; new connections {spent.redis.get('total_connections_received', 0)}"
        )


async def latency_phase(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
    loadgen: Path,
    meter: Meter,
) -> None:
    rng = random.Random(args.seed)
    per_round = int(args.rate * args.seconds)
    print(
        f"\n== 2. latency, open model (vegeta, constant arrival rate): {args.rate:g} req/s x "
        f"{args.seconds:g} s = {per_round} requests per side per round (half reads, half "
        f"searches), {args.rounds} rounds; latency from each request's scheduled start"
    )
    await refresh()
    for target in targets:  # warm-up: JVM, pools, connections
        items = workload(data, max(1, int(args.rate * args.warmup)), rng)
        vegeta.attack(
            loadgen, as_requests(target, items), target.headers(), seconds=args.warmup,
            rate=args.rate,
        )  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {
        t.name: {"read_p50": [], "read_p95": [], "search_p50": [], "search_p95": []}
        for t in targets
    }
    spent = {t.name: Spent() for t in targets}
    for round_index in range(args.rounds):
        await refresh()
        items = workload(data, per_round, rng)
        order = targets if round_index % 2 == 0 else targets[::-1]
        for target in order:
            with meter.measure() as used:
                result = vegeta.attack(
                    loadgen, as_requests(target, items), target.headers(),
                    seconds=args.seconds, rate=args.rate,
                )  # fmt: skip
            used.requests = result.ok()
            used.loadgen_ms = result.loadgen_cpu_ms
            spent[target.name].add(used)
            row = results[target.name]
            for kind in ("read", "search"):
                row[f"{kind}_p50"].append(pct(result.latencies(kind), 50))
                row[f"{kind}_p95"].append(pct(result.latencies(kind), 95))
            errors = note_errors(f"latency round {round_index + 1} {target.name}", result)
            print(
                f"  round {round_index + 1} {target.name:<8} "
                f"read p50 {row['read_p50'][-1]:7.2f} p95 {row['read_p95'][-1]:7.2f} ms | "
                f"search p50 {row['search_p50'][-1]:7.2f} p95 {row['search_p95'][-1]:7.2f} ms | "
                f"errors {errors}; latest send {result.max_lag_ms:.1f} ms behind schedule",
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
            ratios = [
                g / d if d else math.nan
                for g, d in zip(gateway[metric], direct[metric], strict=True)
            ]
            print(f"    {metric:<11} {spread(ratios)}")
        added = [g - d for g, d in zip(gateway["read_p50"], direct["read_p50"], strict=True)]
        print(f"    read p50 added latency (ms, gateway - direct): {spread(added)}")
    databases = ("ehr", "hapi")
    print("\n  spent during the rounds (mixed workload; machine busy = all CPUs)")
    print(spent_header(databases))
    for target in targets:
        print(spent_line(target.name, spent[target.name], databases))


async def saturation_phase(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
    loadgen: Path,
    meter: Meter,
    levels: list[int],
    title: str,
) -> None:
    print(
        f"\n== {title}: closed loop (vegeta -rate 0), concurrency {', '.join(map(str, levels))}"
        f"; {args.sat_seconds:g} s per side, {args.sat_rounds} alternating rounds per level "
        "(same mixed workload)"
    )
    items = workload(data, 5000, random.Random(args.seed + 1))
    databases = ("ehr", "hapi")
    for level in levels:
        rates: dict[str, list[float]] = {t.name: [] for t in targets}
        p95: dict[str, list[float]] = {t.name: [] for t in targets}
        spent = {t.name: Spent() for t in targets}
        for round_index in range(args.sat_rounds):
            await refresh()
            order = targets if round_index % 2 == 0 else targets[::-1]
            for target in order:
                with meter.measure() as used:
                    result = vegeta.attack(
                        loadgen, as_requests(target, items), target.headers(),
                        seconds=args.sat_seconds, concurrency=level,
                    )  # fmt: skip
                used.requests = result.ok()
                used.loadgen_ms = result.loadgen_cpu_ms
                spent[target.name].add(used)
                rate = result.ok() / result.span_s if result.span_s else math.nan
                rates[target.name].append(rate)
                latencies = [ms for _, status, ms in result.rows if 200 <= status < 400]
                p95[target.name].append(pct(latencies, 95))
                errors = note_errors(f"c={level} round {round_index + 1} {target.name}", result)
                print(
                    f"  c={level:<3} round {round_index + 1} {target.name:<8} {rate:7.1f} req/s"
                    f"  p95 {p95[target.name][-1]:7.2f} ms  errors {errors}",
                    flush=True,
                )
        for name, values in rates.items():
            print(f"  c={level:<3} {name:<8} req/s {spread(values)}  p95 ms {spread(p95[name])}")
        if len(targets) == 2:
            ratios = [g / d if d else math.nan for d, g in zip(*rates.values(), strict=True)]
            print(f"  c={level:<3} throughput gateway/direct: {spread(ratios)}")
        print(spent_header(databases))
        for target in targets:
            print(spent_line(f"c={level} {target.name}", spent[target.name], databases))


async def streaming_phase(
    args: argparse.Namespace,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
    api_pids: list[int] | None,
    identity: Identity,
    data: Data,
) -> None:
    sizes = list(BLOBS)
    print(
        "\n== 4. streaming: blob Observations, 200 per size, "
        + ", ".join(f"{s}={BLOBS[s]} KiB" for s in sizes)
        + " each; RSS of the API processes, summed (KiB)"
    )
    if not api_pids:
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
            sampler = RssSampler(api_pids) if api_pids else None
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
                f"NDJSON $export {size}", target, files, api_pids, target is export_gateway, job_s
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
                f"NDJSON Binary {size}", target, [target.base + binary], api_pids,
                target is export_gateway, None,
            )  # fmt: skip
    streaming_summary()


async def ndjson_download(
    label: str,
    target: Target,
    urls: list[str],
    api_pids: list[int] | None,
    sample_rss: bool,
    job_s: float | None,
) -> None:
    headers = target.headers() | {"Accept": "application/fhir+ndjson"}
    sampler = RssSampler(api_pids) if (api_pids and sample_rss) else None
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
    package = Path(ehr.__file__).resolve().parent
    if not package.is_relative_to(REPO):
        return f"{head} in this tree, but the ehr package runs from {package}"
    return f"{head} + uncommitted backend changes" if dirty else head


def _durability(pg: probes.Postgres | None, wanted: str, settings: Settings) -> str:
    """Switch synchronous_commit (unless ``dev``) and say what new sessions actually get."""
    if pg is None:
        return "not controlled (PostgreSQL is not the devstack's cluster)"
    how = "left as the stack runs it"
    if wanted != "dev":
        how = pg.durability(wanted)
    seen = ", ".join(f"{db} {pg.setting('synchronous_commit', db)[0]}" for db in ("ehr", "hapi"))
    return f"synchronous_commit in effect (SHOW from a new session): {seen} [{how}]"


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    # This process's own logs (setup through the ehr services): warnings only, human-readable.
    configure_logging(LogSettings(level="WARNING", json_format=False))
    hapi = settings.fhir.base_url.rstrip("/")
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=5.0)
    loadgen = vegeta.ensure_vegeta()
    stack = Stack.from_settings()
    cluster = stack.postgres()
    pg = probes.Postgres(cluster) if cluster is not None and cluster.running() else None
    if pg is not None:
        atexit.register(pg.restore)  # also on an exception or Ctrl-C; restore() runs once
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    hapi_port = urllib.parse.urlsplit(hapi).port or 80
    redis_url = settings.redis.url.get_secret_value()
    redis_port = urllib.parse.urlsplit(redis_url).port or 6379
    print(
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {sys.version.split()[0]}; code {_revision()}\n"
        f"load generator: vegeta {vegeta.version(loadgen)} ({loadgen})\n"
        f"HAPI {hapi} (pid {next(iter(listening_pids(hapi_port)), '?')}); "
        f"tenant {args.tenant}"
    )
    redis_client = redis_lib.Redis.from_url(redis_url)
    identity = Identity(settings, args.tenant)
    try:
        print(f"PostgreSQL: {_durability(pg, args.durability, settings)}")
        async with (
            FhirClient(settings.fhir) as fhir,
            httpx.AsyncClient(limits=limits, timeout=timeout) as direct_http,
            httpx.AsyncClient(limits=limits, timeout=timeout) as gateway_http,
        ):
            await wait_answering(direct_http, [f"{hapi}/metadata"])
            PROBLEMS.clear()  # a HAPI still starting before the run is not a problem of it
            await identity.ensure(fhir)
            tenant_base = f"{hapi}/{args.tenant}"
            data = await seed(direct_http, tenant_base, args.patients, args.observations, BLOBS)
            token = {"value": await identity.token()}

            # A read that needs HAPI's database (metadata does not: a HAPI whose connection pool
            # is exhausted still answers it).
            ready_urls = [f"{tenant_base}/Patient/{data.patients[0][0]}"]

            async def refresh() -> None:
                """Before every round: the shared servers answer (someone may have restarted
                one), and a fresh token."""
                await wait_answering(direct_http, ready_urls)
                token["value"] = await identity.token()

            with contextlib.ExitStack() as stack_of:
                process = None
                api_url = args.api_url
                api_root = args.api_pid
                if api_url is None:
                    port = _free_port()
                    log = Path(tempfile.gettempdir()) / f"bench-fhir-gateway-api-{port}.log"
                    process = stack_of.enter_context(api_subprocess(port, args.api_workers, log))
                    api_url = f"http://127.0.0.1:{port}"
                    api_root = process.pid
                    print(
                        f"API: `{shlex.join(api_command(port, args.api_workers))}` "
                        f"(api-workers {args.api_workers}; pid {process.pid}; log {log})"
                    )
                else:
                    print(f"API: {api_url} (running; pid {api_root or 'unknown: no CPU/RSS'})")
                api_url = api_url.rstrip("/")
                await wait_ready(gateway_http, api_url, process, args.api_workers)
                ready_urls.append(f"{api_url}/ready")
                processes = probes.ProcessGroups(
                    api_root=api_root,
                    hapi_port=hapi_port,
                    postgres_pid=cluster.pid() if cluster is not None else None,
                    redis_port=redis_port,
                )
                groups = processes.groups()
                print(
                    "processes measured: "
                    + "; ".join(
                        f"{name} {len(pids)} ({pids[0] if pids else '-'})"
                        for name, pids in groups.items()
                    )
                )
                meter = Meter(processes, pg, redis_client)
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
                await background(args, meter)
                await inventory_phase(args, data, targets, meter, refresh)
                await latency_phase(args, data, targets, refresh, loadgen, meter)
                levels = [int(c) for c in args.concurrency.split(",")]
                await saturation_phase(
                    args, data, targets, refresh, loadgen, meter, levels, "3. saturation"
                )
                if args.pin:
                    await pinned_saturation(args, data, targets, refresh, loadgen, meter, levels)
                try:
                    if not args.skip_streaming:
                        await streaming_phase(
                            args, targets, refresh, processes.api_pids() if api_root else None,
                            identity, data,
                        )  # fmt: skip
                except (RuntimeError, httpx.HTTPError) as exc:
                    PROBLEMS.append(f"streaming stopped: {' '.join(str(exc).split())[:200]}")
                    print(f"  streaming STOPPED: {PROBLEMS[-1]}")
                finally:
                    verdict(processes)
    finally:
        try:
            await identity.aclose()
        finally:
            if pg is not None:
                pg.restore()
                restored = pg.setting("synchronous_commit")[0]
                print(f"\nPostgreSQL restored: synchronous_commit {restored}")


async def pinned_saturation(
    args: argparse.Namespace,
    data: Data,
    targets: list[Target],
    refresh: Callable[[], Awaitable[None]],
    loadgen: Path,
    meter: Meter,
    levels: list[int],
) -> None:
    """Saturation again with HAPI on CPU 0 and every API process on CPU 1 (others unpinned)."""
    cpus = sorted(os.sched_getaffinity(0))
    hapi_pid = meter.processes.hapi_pid
    api = meter.processes.api_pids()
    if len(cpus) < 2 or hapi_pid is None or not api:
        print("\n== 3b. pinned saturation skipped (needs 2 CPUs, HAPI's pid and the API's)")
        return
    assignment = {hapi_pid: {cpus[0]}} | {pid: {cpus[1]} for pid in api}
    with probes.pinned(assignment):
        await saturation_phase(
            args, data, targets, refresh, loadgen, meter, levels[:1],
            f"3b. saturation pinned (HAPI on CPU {cpus[0]}, API on CPU {cpus[1]}; PostgreSQL, "
            "Redis and vegeta unpinned)",
        )  # fmt: skip


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-gateway", help="benchmark tenant slug")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--observations", type=int, default=5, help="per patient")
    parser.add_argument("--api-workers", type=int, default=1, help="ehr serve --workers")
    parser.add_argument(
        "--durability", choices=("on", "remote_write", "local", "dev"), default="on",
        help="synchronous_commit for the run (dev: leave the stack's off)",
    )  # fmt: skip
    parser.add_argument("--idle", type=float, default=3.0, help="background window, s (0: skip)")
    parser.add_argument("--inventory", type=int, default=100, help="requests per shape, phase 1")
    parser.add_argument("--show-statements", action="store_true", help="for every shape")
    parser.add_argument("--rate", type=float, default=40.0, help="arrivals per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds per side before")
    parser.add_argument("--concurrency", default="16,32", help="saturation levels, comma-separated")
    parser.add_argument("--sat-seconds", type=float, default=5.0)
    parser.add_argument("--sat-rounds", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="also saturate pinned (first level)")
    parser.add_argument(
        "--export-wait", type=float, default=150.0, help="max s per $export (0: skip)"
    )
    parser.add_argument("--skip-streaming", action="store_true")
    parser.add_argument("--api-url", help="use this running API instead of starting one")
    parser.add_argument("--api-pid", type=int, help="its (parent) pid, for CPU and RSS")
    parser.add_argument("--seed", type=int, default=20261121)
    args = parser.parse_args()
    if not 0 < args.rate <= 2000 or not 0 < args.seconds <= 120 or not 1 <= args.rounds <= 15:
        parser.error("bounds: 0 < rate <= 2000, 0 < seconds <= 120, 1 <= rounds <= 15")
    levels = args.concurrency.split(",")
    if (
        not all(c.isdigit() and 1 <= int(c) <= 512 for c in levels)
        or not 0 < args.sat_seconds <= 120
    ):
        parser.error("bounds: 1 <= concurrency <= 512, 0 < sat-seconds <= 120")
    if not 1 <= args.api_workers <= 16 or not 10 <= args.inventory <= 2000:
        parser.error("bounds: 1 <= api-workers <= 16, 10 <= inventory <= 2000")
    return args


def main() -> None:
    asyncio.run(run(_parse()))


if __name__ == "__main__":
    main()
