"""CDS Hooks order-sign with a 20-drug profile vs a direct HAPI read, same run (issue 6, item 7).

    .venv/bin/ehr stack run -- .venv/bin/python benchmarks/cds_hooks.py \
        [--rounds 5] [--calls 200] [--warmup 30]

Target P6 (/work/shared/docs/performance.md): order-sign p95 <= 500 ms absolute and
p95(order-sign) / p95(direct HAPI read) <= 3, measured side by side in this run.

Setup (idempotent, kept between runs): the tenant ``bench-cds`` (HAPI partition) through
ehr.platform.tenancy.create_tenant; a first-party CDS client (issuer ``urn:ehr:bench:cds``)
re-registered
every run with a fresh ES384 key (the old row is deleted first: the issuer is unique); one Patient
(identifier ``urn:ehr:bench:mrn|cds-000001``) with 20 active MedicationRequests coded by RxNorm SCDs
of the shipped table (common chronic medications, warfarin among them), 5 AllergyIntolerances
(4 RxNorm ingredients, 1 SNOMED CT substance) and 3 ServiceRequests, all tagged ``urn:ehr:bench``
and posted as one transaction bundle. The API runs in a subprocess (uvicorn
ehr.entrypoints.api:create_app
--factory, 1 worker, warnings only, no access log, free loopback port, its public base URL set so
the tokens' ``aud`` matches), or --api-url points at a running one.

Each call of order-sign carries one draft MedicationRequest (ibuprofen 600 MG Oral Tablet, SCD
197806: interacts with warfarin, aspirin allergy), a fresh hookInstance and a fresh client JWT
(ES384, new jti); the token is signed and the body serialised BEFORE the timer starts (signing is
timed separately). Variants, sequential (one call at a time), measured in interleaved rounds
(order alternating between rounds) after a warm-up:

  a  direct     GET {hapi}/{tenant}/Patient/{id} (httpx, keep-alive, no auth)
  b  no-pref    POST {api}/cds-services/order-sign without prefetch: the service reads the
                patient, MedicationRequests, MedicationStatements, AllergyIntolerances and
                ServiceRequests from HAPI itself (first-party client)
  c  prefetch   the same with every prefetch key of order-sign (read from discovery) filled: the
                benchmark reads that data from HAPI once up front and sends it with every call
  d  hapi-q     context, no target: the same prefetch queries sent straight to HAPI,
                concurrently (what variant b's service reads before it can answer)

Every order-sign answer must be 200 with at least one card (else the run aborts, printing the
status and body). At the end the audit trail of this run's calls is read back to show the data
source the service recorded (b: hapi, c: prefetch). Prints per round p50/p95, then the median of
round values (spread min..max), the ratios b/a and c/a (median of round ratios; also d/a and
b/d), the absolute p95s against 500 ms, and the client's signing cost.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy import delete, select

from ehr.core.config import LogSettings, Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import AuditRecord, CdsClient
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks.clients import register_client
from ehr.platform.tenancy import create_tenant

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
BENCH_TAG = {"system": "urn:ehr:bench", "code": "cds-hooks"}
MRN_SYSTEM = "urn:ehr:bench:mrn"
MRN = "cds-000001"
ISSUER = "urn:ehr:bench:cds"
FHIR_JSON = "application/fhir+json"
REPO = Path(__file__).resolve().parents[1]
SERVICE_PATH = "/cds-services/order-sign"
DISCOVERY_PATH = "/cds-services"
TARGET_P95_MS = 500.0
TARGET_RATIO = 3.0
REQUEST_TIMEOUT = 30.0

# A plausible older adult's active list: 20 SCDs of the shipped RxNorm subset (single ingredient).
PROFILE = [
    ("311354", "lisinopril 5 MG Oral Tablet"),
    ("198211", "simvastatin 40 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("855332", "warfarin sodium 5 MG Oral Tablet"),
    ("312941", "sertraline 50 MG Oral Tablet"),
    ("198051", "omeprazole 20 MG Delayed Release Oral Capsule"),
    ("892246", "levothyroxine sodium 0.1 MG Oral Tablet"),
    ("866514", "metoprolol tartrate 50 MG Oral Tablet"),
    ("310429", "furosemide 20 MG Oral Tablet"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
    ("310431", "gabapentin 300 MG Oral Capsule"),
    ("310490", "glipizide 5 MG Oral Tablet"),
    ("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet"),
    ("309362", "clopidogrel 75 MG Oral Tablet"),
    ("198145", "prednisone 10 MG Oral Tablet"),
    ("835603", "tramadol hydrochloride 50 MG Oral Tablet"),
    ("313096", "spironolactone 25 MG Oral Tablet"),
    ("197604", "digoxin 0.125 MG Oral Tablet"),
    ("308047", "alprazolam 0.25 MG Oral Tablet"),
    ("317573", "pioglitazone 15 MG Oral Tablet"),
]
# (system, code, text): four RxNorm ingredients and the SNOMED CT substance "penicillin".
ALLERGIES = [
    (RXNORM, "723", "amoxicillin"),
    (RXNORM, "10180", "sulfamethoxazole"),
    (RXNORM, "1191", "aspirin"),
    (RXNORM, "2670", "codeine"),
    (SNOMED, "764146007", "penicillin"),
]
SERVICE_REQUESTS = [
    ("58410-2", "CBC panel"),
    ("57698-3", "Lipid panel"),
    ("4548-4", "Hemoglobin A1c"),
]
DRAFT = ("197806", "ibuprofen 600 MG Oral Tablet")


# --------------------------------------------------------------------------------------------
# Client key and tokens (CDS Hooks 2.0.1 "Trusting CDS Clients": ES384, kid, fresh jti)
# --------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(dict(value), separators=(",", ":")).encode())


class ClientKey:
    """An ES384 (P-384) key pair: the public JWKS to register and tokens signed with it."""

    def __init__(self) -> None:
        self.kid = f"bench-{secrets.token_hex(6)}"
        self._private = ec.generate_private_key(ec.SECP384R1())

    def jwks(self) -> dict[str, Any]:
        numbers = self._private.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "EC",
                    "crv": "P-384",
                    "x": _b64url(numbers.x.to_bytes(48, "big")),
                    "y": _b64url(numbers.y.to_bytes(48, "big")),
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "ES384",
                }
            ]
        }

    def token(self, audience: str, lifetime: int = 120) -> str:
        now = int(time.time())
        header = {"alg": "ES384", "typ": "JWT", "kid": self.kid}
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "exp": now + lifetime,
            "iat": now,
            "jti": str(uuid.uuid4()),
        }
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        der = self._private.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}"


# --------------------------------------------------------------------------------------------
# Setup: tenant, client, data
# --------------------------------------------------------------------------------------------


async def ensure_tenant_and_client(
    settings: Settings, fhir: FhirClient, slug: str, key: ClientKey
) -> None:
    engine = create_engine(settings.db)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await create_tenant(session, fhir, slug=slug, name="Benchmark CDS Hooks")
            await session.execute(delete(CdsClient).where(CdsClient.issuer == ISSUER))
            await register_client(
                session,
                tenant_slug=slug,
                issuer=ISSUER,
                name="Benchmark CDS client",
                jwks=key.jwks(),
                first_party=True,
            )
    finally:
        await engine.dispose()


def _rx(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def _resources(now: dt.datetime) -> list[dict[str, Any]]:
    meta = {"tag": [BENCH_TAG]}
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    subject = {"reference": patient_url}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "_fullUrl": patient_url,
            "meta": meta,
            "identifier": [{"system": MRN_SYSTEM, "value": MRN}],
            "name": [{"family": "Bench", "given": ["Cds"]}],
            "gender": "female",
            "birthDate": "1948-05-17",
        }
    ]
    for index, (code, display) in enumerate(PROFILE):
        authored = (now - dt.timedelta(days=30 + 11 * index)).date().isoformat()
        resources.append(
            {
                "resourceType": "MedicationRequest",
                "meta": meta,
                "status": "active",
                "intent": "order",
                "subject": subject,
                "authoredOn": authored,
                "medicationCodeableConcept": _rx(code, display),
                "dosageInstruction": [{"text": "as directed"}],
            }
        )
    for system, code, text in ALLERGIES:
        resources.append(
            {
                "resourceType": "AllergyIntolerance",
                "meta": meta,
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                            "code": "confirmed",
                        }
                    ]
                },
                "type": "allergy",
                "category": ["medication"],
                "criticality": "high" if text in ("penicillin", "aspirin") else "low",
                "code": {"coding": [{"system": system, "code": code}], "text": text},
                "patient": subject,
            }
        )
    for index, (code, text) in enumerate(SERVICE_REQUESTS):
        resources.append(
            {
                "resourceType": "ServiceRequest",
                "meta": meta,
                "status": "completed",
                "intent": "order",
                "category": [{"coding": [{"system": SNOMED, "code": "108252007"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
                "subject": subject,
                "authoredOn": (now - dt.timedelta(days=20 + 40 * index)).isoformat(),
            }
        )
    return resources


async def _count(http: httpx.AsyncClient, base: str, resource_type: str, query: str) -> int:
    response = await http.get(f"{base}/{resource_type}?{query}&_summary=count")
    response.raise_for_status()
    return int(response.json().get("total", 0))


async def _tagged_ids(http: httpx.AsyncClient, base: str, resource_type: str) -> list[str]:
    tag = f"{BENCH_TAG['system']}|{BENCH_TAG['code']}"
    response = await http.get(
        f"{base}/{resource_type}", params={"_tag": tag, "_elements": "id", "_count": "500"}
    )
    response.raise_for_status()
    return [e["resource"]["id"] for e in response.json().get("entry") or []]


async def seed(http: httpx.AsyncClient, base: str) -> str:
    """The benchmark patient's id; (re)creates the patient and its data when incomplete."""
    started = time.perf_counter()
    response = await http.get(
        f"{base}/Patient", params={"identifier": f"{MRN_SYSTEM}|{MRN}", "_elements": "id"}
    )
    response.raise_for_status()
    found = [str(e["resource"]["id"]) for e in response.json().get("entry") or []]
    if len(found) == 1:
        pid = found[0]
        counts = (
            await _count(http, base, "MedicationRequest", f"patient={pid}&status=active"),
            await _count(http, base, "AllergyIntolerance", f"patient={pid}"),
            await _count(http, base, "ServiceRequest", f"patient={pid}"),
        )
        if counts == (len(PROFILE), len(ALLERGIES), len(SERVICE_REQUESTS)):
            print(f"data: patient {pid} (kept from an earlier run), 20 MR, 5 AI, 3 SR")
            return pid
        print(f"data: patient {pid} incomplete {counts}: recreating")
    if found:
        for resource_type in ("MedicationRequest", "AllergyIntolerance", "ServiceRequest"):
            for ident in await _tagged_ids(http, base, resource_type):
                (await http.delete(f"{base}/{resource_type}/{ident}")).raise_for_status()
        for ident in found:
            (await http.delete(f"{base}/Patient/{ident}")).raise_for_status()
    entries = []
    for resource in _resources(dt.datetime.now(dt.UTC)):
        entry: dict[str, Any] = {"request": {"method": "POST", "url": resource["resourceType"]}}
        if "_fullUrl" in resource:
            entry["fullUrl"] = resource.pop("_fullUrl")
        entry["resource"] = resource
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = await http.post(
        base, json=bundle, headers={"Content-Type": FHIR_JSON}, timeout=120.0
    )
    if response.status_code >= 400:
        raise SystemExit(f"seed transaction failed: {response.status_code} {response.text[:500]}")
    pid = next(
        str(e["response"]["location"]).split("/")[1]
        for e in response.json()["entry"]
        if e["response"]["location"].startswith("Patient/")
    )
    print(
        f"data: patient {pid} created with {len(PROFILE)} MedicationRequests, "
        f"{len(ALLERGIES)} AllergyIntolerances, {len(SERVICE_REQUESTS)} ServiceRequests "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return pid


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
    env.setdefault("EHR_LOG__LEVEL", "WARNING")
    # The tokens' `aud` must be exactly {public base}{path}: this API's real address.
    env["EHR_CDS_HOOKS__PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
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
# Calls
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")


def fill(template: str, context: Mapping[str, Any]) -> str:
    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith("context.") or name[8:] not in context:
            raise SystemExit(f"prefetch template {template!r}: cannot fill {{{{{name}}}}}")
        return str(context[name[8:]])

    return _TOKEN.sub(value_of, template)


@dataclass
class Bench:
    api: str
    hapi_base: str  # {hapi}/{tenant}
    api_http: httpx.AsyncClient
    hapi_http: httpx.AsyncClient
    key: ClientKey
    patient_id: str
    user_agent: str
    prefetch: dict[str, Any] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)  # the prefetch queries, filled
    sign_ms: list[float] = field(default_factory=list)
    cards: dict[str, set[str]] = field(default_factory=dict)

    def context(self, draft_id: str) -> dict[str, Any]:
        draft = {
            "resourceType": "MedicationRequest",
            "id": draft_id,
            "status": "draft",
            "intent": "order",
            "subject": {"reference": f"Patient/{self.patient_id}"},
            "medicationCodeableConcept": _rx(*DRAFT),
        }
        return {
            "userId": "Practitioner/bench",
            "patientId": self.patient_id,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            },
        }

    def headers(self, path: str, variant: str) -> dict[str, str]:
        started = time.perf_counter_ns()
        token = self.key.token(f"{self.api}{path}")
        self.sign_ms.append((time.perf_counter_ns() - started) / 1e6)
        return {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"{self.user_agent} {variant}",
        }

    async def discover(self) -> dict[str, str]:
        response = await self.api_http.get(
            self.api + DISCOVERY_PATH, headers=self.headers(DISCOVERY_PATH, "discovery")
        )
        if response.status_code != 200:
            raise SystemExit(
                f"GET {DISCOVERY_PATH} -> {response.status_code}: {response.text[:1000]}"
            )
        for service in response.json().get("services", []):
            if service.get("id") == "order-sign":
                return dict(service.get("prefetch") or {})
        raise SystemExit(f"discovery has no order-sign service: {response.text[:1000]}")

    async def read_prefetch(self, templates: Mapping[str, str]) -> None:
        """Each key's data read from HAPI once (a resource, or the searchset Bundle)."""
        context = self.context("bench-draft-0")
        for key, template in templates.items():
            response = await self.hapi_http.get(
                f"{self.hapi_base}/{fill(template, context)}", headers={"Accept": FHIR_JSON}
            )
            if response.status_code != 200:
                raise SystemExit(f"prefetch {key}: HAPI {response.status_code} {response.text}")
            self.prefetch[key] = response.json()
            self.queries.append(f"{self.hapi_base}/{fill(template, context)}")

    async def direct(self, _index: int) -> float:
        url = f"{self.hapi_base}/Patient/{self.patient_id}"
        headers = {"Accept": FHIR_JSON}
        started = time.perf_counter()
        response = await self.hapi_http.get(url, headers=headers)
        took = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"direct read: GET {url} -> {response.status_code} {response.text}")
        return took

    async def direct_prefetch(self, _index: int) -> float:
        """The prefetch queries sent to HAPI concurrently (what variant b's service reads)."""
        headers = {"Accept": FHIR_JSON}
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(self.hapi_http.get(url, headers=headers) for url in self.queries)
        )
        took = (time.perf_counter() - started) * 1000
        for url, response in zip(self.queries, responses, strict=True):
            if response.status_code != 200:
                raise SystemExit(f"GET {url} -> {response.status_code} {response.text[:500]}")
        return took

    async def order_sign(self, variant: str, with_prefetch: bool, index: int) -> float:
        body: dict[str, Any] = {
            "hook": "order-sign",
            "hookInstance": str(uuid.uuid4()),
            "context": self.context(f"bench-draft-{index}"),
        }
        if with_prefetch:
            body["prefetch"] = self.prefetch
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = self.headers(SERVICE_PATH, variant)
        url = self.api + SERVICE_PATH
        started = time.perf_counter()
        response = await self.api_http.post(url, content=content, headers=headers)
        took = (time.perf_counter() - started) * 1000
        cards = response.json().get("cards") if response.status_code == 200 else None
        if not cards:
            raise SystemExit(
                f"\n*** ABORT ({variant}): POST {SERVICE_PATH} -> {response.status_code} with "
                f"{0 if cards is not None else 'no'} cards; a benchmark of errors is worthless.\n"
                f"body: {response.text[:2000]}"
            )
        self.cards.setdefault(variant, set()).update(c.get("summary", "") for c in cards)
        return took


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: list[float], fmt: str = ".2f") -> str:
    return (
        f"{statistics.median(values):{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})"
        if values
        else "n/a"
    )


def _revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "backend"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted backend changes" if dirty else head


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


async def audit_sources(
    settings: Settings, tenant: str, user_agent: str
) -> dict[tuple[str, str, str], int]:
    """(variant, recorded data source) -> calls, from this run's audit records."""
    engine = create_engine(settings.db)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(AuditRecord.user_agent, AuditRecord.details, AuditRecord.outcome).where(
                    AuditRecord.tenant == tenant,
                    AuditRecord.action == "cds:order-sign",
                    AuditRecord.user_agent.startswith(user_agent),
                )
            )
            found: Counter[tuple[str, str, str]] = Counter()
            for agent, details, outcome in rows.all():
                source = str((details or {}).get("source"))
                found[(str(agent).rsplit(" ", 1)[-1], source, outcome)] += 1
            return dict(found)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------


def _abort_on_transport_error(
    name: str, call: Callable[[int], Awaitable[float]]
) -> Callable[[int], Awaitable[float]]:
    async def guarded(index: int) -> float:
        try:
            return await call(index)
        except httpx.RequestError as exc:
            raise SystemExit(
                f"\n*** ABORT ({name}): {type(exc).__name__} {exc} ({exc.request.method} "
                f"{exc.request.url}); was HAPI or the API restarted or overloaded?"
            ) from None

    return guarded


async def measure(args: argparse.Namespace, bench: Bench) -> None:
    variants: dict[str, Callable[[int], Awaitable[float]]] = {
        "a direct": bench.direct,
        "b no-prefetch": lambda i: bench.order_sign("b", False, i),
        "c prefetch": lambda i: bench.order_sign("c", True, i),
        "d hapi-queries": bench.direct_prefetch,
    }
    names = list(variants)
    for name, call in list(variants.items()):
        variants[name] = _abort_on_transport_error(name, call)
    counter = iter(range(10**9))
    print(f"\nwarm-up: {args.warmup} calls per variant", flush=True)
    for name in names:
        for _ in range(args.warmup):
            await variants[name](next(counter))
    print(
        f"\n{args.rounds} interleaved rounds x {args.calls} sequential calls per variant "
        f"(ms; order alternates between rounds)"
    )
    p50s: dict[str, list[float]] = {n: [] for n in names}
    p95s: dict[str, list[float]] = {n: [] for n in names}
    bench.sign_ms.clear()
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            samples = [await variants[name](next(counter)) for _ in range(args.calls)]
            p50s[name].append(pct(samples, 50))
            p95s[name].append(pct(samples, 95))
            print(
                f"  round {round_index + 1} {name:<14} p50 {p50s[name][-1]:7.2f}  "
                f"p95 {p95s[name][-1]:7.2f}  max {max(samples):7.2f}  "
                f"({time.perf_counter() - started:4.1f} s)",
                flush=True,
            )

    print("\n  overall (ms; median of round values, spread = min..max of rounds)")
    print(f"  {'variant':<14} {'p50':>22} {'p95':>22}")
    for name in names:
        print(f"  {name:<14} {spread(p50s[name]):>22} {spread(p95s[name]):>22}")
    direct = names[0]
    print("\n  ratio to the direct HAPI read (median of round ratios, spread)")
    print(f"  {'':<14} {'p50 ratio':>22} {'p95 ratio':>22}   target p95 ratio <= {TARGET_RATIO:g}")
    for name in names[1:]:
        r50 = [v / d for v, d in zip(p50s[name], p50s[direct], strict=True)]
        r95 = [v / d for v, d in zip(p95s[name], p95s[direct], strict=True)]
        verdict = "met" if statistics.median(r95) <= TARGET_RATIO else "NOT met"
        if name.startswith("d"):
            verdict = "(context, no target)"
        print(f"  {name[0]}/a {name[2:]:<10} {spread(r50):>22} {spread(r95):>22}   {verdict}")
    r50 = [b / d for b, d in zip(p50s[names[1]], p50s[names[3]], strict=True)]
    r95 = [b / d for b, d in zip(p95s[names[1]], p95s[names[3]], strict=True)]
    print(f"  {'b/d':<14} {spread(r50):>22} {spread(r95):>22}   (service / its own HAPI reads)")
    print(f"\n  absolute p95 vs {TARGET_P95_MS:g} ms (median of round p95s, worst round)")
    for name in names[1:3]:
        p95 = statistics.median(p95s[name])
        verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
        print(f"  {name:<14} {p95:8.2f} ms (worst {max(p95s[name]):.2f})   {verdict}")
    sign = bench.sign_ms
    print(
        f"\n  client JWT signing (ES384, outside the timed region): median "
        f"{statistics.median(sign):.3f} ms, p95 {pct(sign, 95):.3f} ms over {len(sign)} tokens"
    )


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    configure_logging(LogSettings(level="WARNING", json_format=False))
    hapi = settings.fhir.base_url.rstrip("/")
    print(f"machine: {_machine()}")
    print(f"code {_revision()}; HAPI {hapi}; tenant {args.tenant}")
    key = ClientKey()
    timeout = httpx.Timeout(REQUEST_TIMEOUT, connect=5.0)
    async with (
        FhirClient(settings.fhir) as fhir,
        httpx.AsyncClient(timeout=timeout) as hapi_http,
        httpx.AsyncClient(timeout=timeout) as api_http,
    ):
        await ensure_tenant_and_client(settings, fhir, args.tenant, key)
        print(f"CDS client: {ISSUER} (first-party, ES384 kid {key.kid}, registered now)")
        hapi_base = f"{hapi}/{args.tenant}"
        patient_id = await seed(hapi_http, hapi_base)
        with contextlib.ExitStack() as stack:
            process = None
            api_url = args.api_url
            if api_url is None:
                port = _free_port()
                log = Path(tempfile.gettempdir()) / f"bench-cds-hooks-api-{port}.log"
                process = stack.enter_context(api_subprocess(port, log))
                api_url = f"http://127.0.0.1:{port}"
                print(f"API: pid {process.pid} on {api_url} (log {log})")
            api_url = api_url.rstrip("/")
            await wait_ready(api_http, api_url, process)
            run_id = secrets.token_hex(4)
            bench = Bench(
                api=api_url,
                hapi_base=hapi_base,
                api_http=api_http,
                hapi_http=hapi_http,
                key=key,
                patient_id=patient_id,
                user_agent=f"ehr-bench-cds/{run_id}",
            )
            templates = await bench.discover()
            await bench.read_prefetch(templates)
            size = len(json.dumps(bench.prefetch, separators=(",", ":")))
            counts = {
                k: (len(v.get("entry") or []) if v.get("resourceType") == "Bundle" else 1)
                for k, v in bench.prefetch.items()
            }
            print(
                f"order-sign prefetch (discovery): {', '.join(templates)}; read once from HAPI: "
                + ", ".join(f"{k}={n}" for k, n in counts.items())
                + f" ({size / 1024:.1f} KiB sent with each variant-c call)"
            )
            await measure(args, bench)
            for variant in ("b", "c"):
                print(f"  cards {variant}: " + " | ".join(sorted(bench.cards.get(variant, ()))))
            if bench.cards.get("b") != bench.cards.get("c"):
                print("  NOTE: the cards differ between b and c (prefetch vs fetched data)")
        sources = await audit_sources(settings, args.tenant, bench.user_agent)
        print(
            "  audit (variant, data source, outcome -> calls): "
            + ", ".join(f"{v}/{s}/{o}: {n}" for (v, s, o), n in sorted(sources.items()))
        )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-cds", help="benchmark tenant slug")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="per variant per round")
    parser.add_argument("--warmup", type=int, default=30, help="calls per variant before")
    parser.add_argument("--api-url", help="use this running API (its public base URL must be it)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 15 or not 20 <= args.calls <= 2000 or not 0 <= args.warmup <= 1000:
        parser.error("bounds: 1 <= rounds <= 15, 20 <= calls <= 2000, 0 <= warmup <= 1000")
    return args


def main() -> None:
    asyncio.run(run(_parse()))


if __name__ == "__main__":
    main()
