"""Each door during each outage behaves as docs/adr/0013-outages.md says (live).

The shared stack is never stopped: an outage is an app (``create_app(settings)``) whose settings
point ONE dependency at a closed port on 127.0.0.1 while the others are the real stack. Redis
"coming back" is a TCP forwarder to the real Redis started on that port mid-test; a HAPI that
hangs is a listener that accepts and never answers.

==========  ==========================================  ==========================  ==============
door        Redis down                                  PostgreSQL down             HAPI down
==========  ==========================================  ==========================  ==============
/api        serves (deny-list from PostgreSQL,          503 database_unavailable    503 fhir_unav.
            in-process login throttle)                                              / 504 timeout
/fhir       serves (in-process rate limit); _getpages,  503 OperationOutcome        503 / 504 OO
            export poll and kick-off → 503
/cds-       503 (jti replay check has no durable copy)  503                         prefetch: 200;
services                                                                            reads → 503
==========  ==========================================  ==========================  ==============
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import SecretStr
from support.auth_live import issue_api_key
from support.cds import (
    CdsClientKey,
    new_client_key,
    register_cds_client,
    remove_cds_clients,
    signed_headers,
)
from support.database import open_sessions
from support.fhir_builders import medication_request, order_sign, searchset
from support.in_process import serve
from support.ports import free_port
from support.settings import settings_with
from support.tenant_world import TenantWorld, make_tenant, remove_tenants, world_slug

from ehr.core.config import Settings
from ehr.core.dependencies import AppResources
from ehr.core.redis_store import create_redis, redis_health
from ehr.entrypoints.api import create_app
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks.client_auth import expected_audience
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.revocation import DENY_KEY_PREFIX
from ehr.platform.auth.service import create_user

pytestmark = pytest.mark.integration

PASSWORD = "Outage-Harbour-Lamps-Quiet-42"
USERNAME = "outage.physician"
FHIR_JSON = "application/fhir+json"
PROBLEM_JSON = "application/problem+json"
WARFARIN_5MG_TABLET = "855332"
IBUPROFEN_600MG_TABLET = "197806"

Client = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, FastAPI]]]


# --- the world ----------------------------------------------------------------------------------


@dataclass
class OutageWorld:
    tenant: TenantWorld
    cds_issuer: str
    cds_key: CdsClientKey
    exporter_key: str  # an API key with system/*.rs (bulk export)

    @property
    def patient_id(self) -> str:
        return str(self.tenant.patient["id"])

    def auth(self, role: Role = Role.PHYSICIAN) -> dict[str, str]:
        return self.tenant.auth(role)


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[OutageWorld]:
    """A tenant (HAPI partition, a patient, a user of every role with tokens), a user with a
    known password and a first-party CDS client."""
    fhir = FhirClient(settings.fhir)
    label = "out"
    slug = world_slug(label, run_id)
    issuer = f"https://cds-outages-{run_id}.example.org"
    async with open_sessions(settings) as sessions:
        try:
            tenant = await make_tenant(label, run_id, sessions, fhir, settings)
            async with sessions() as session, session.begin():
                await create_user(
                    session,
                    tenant_id=tenant.tenant_id,
                    username=USERNAME,
                    password=PASSWORD,
                    roles=[Role.PHYSICIAN.value],
                    granted_by="test",
                    settings=settings,
                )
            _, exporter = await issue_api_key(
                sessions, tenant.tenant_id, name="outages exporter", scopes=["system/*.rs"]
            )
            key = new_client_key("ES256")
            await register_cds_client(
                sessions, tenant_slug=slug, issuer=issuer, key=key, first_party=True
            )
            yield OutageWorld(tenant=tenant, cds_issuer=issuer, cds_key=key, exporter_key=exporter)
        finally:
            try:
                await remove_cds_clients(sessions, [issuer])
                await remove_tenants([slug], fhir, sessions)
            finally:
                await fhir.aclose()


def redis_down(settings: Settings, port: int) -> Settings:
    return settings_with(settings, "redis", url=SecretStr(f"redis://127.0.0.1:{port}/0"))


def postgres_down(settings: Settings, port: int) -> Settings:
    url = SecretStr(f"postgresql+asyncpg://ehr:ehr-dev-password@127.0.0.1:{port}/ehr")
    return settings_with(settings, "db", url=url)


def hapi_down(settings: Settings, port: int, *, timeout: float | None = None) -> Settings:
    fhir: dict[str, Any] = {"base_url": f"http://127.0.0.1:{port}/fhir"}
    gateway: dict[str, Any] = {}
    if timeout is not None:
        fhir["timeout_seconds"] = timeout
        gateway["upstream_timeout_seconds"] = timeout
    return settings_with(settings_with(settings, "fhir", **fhir), "gateway", **gateway)


@pytest.fixture
def client() -> Client:
    """``async with client(settings, ip=...) as (http, app)``: an in-process app and client."""

    @asynccontextmanager
    async def make(
        settings: Settings, *, ip: str | None = None
    ) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
        app = create_app(settings)
        peer = (ip or f"10.13.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 40000)
        async with serve(app, peer=peer) as http:
            yield http, app

    return make


def resources(app: FastAPI) -> AppResources:
    found = app.state.resources
    assert isinstance(found, AppResources)
    return found


# --- checks ---------------------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def outcome(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    codes = [c["code"] for i in body["issue"] for c in (i.get("details") or {}).get("coding", [])]
    assert code in codes, body
    return body


def degraded_count(component: str, fallback: str) -> float:
    value = REGISTRY.get_sample_value(
        "ehr_redis_degraded_operations_total", {"component": component, "fallback": fallback}
    )
    return value or 0.0


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


async def login(http: httpx.AsyncClient, world: OutageWorld, password: str = PASSWORD) -> Any:
    return await http.post(
        "/api/auth/login",
        json={"tenant": world.tenant.slug, "username": USERNAME, "password": password},
    )


def cds_headers(world: OutageWorld, settings: Settings, path: str) -> dict[str, str]:
    audience = expected_audience(settings, path)
    return signed_headers(world.cds_key, issuer=world.cds_issuer, audience=audience)


def signing_call(patient_id: str, *, prefetch: bool) -> dict[str, Any]:
    """Ibuprofen signed for a patient on warfarin: the prefetch carries the warfarin order."""
    draft = medication_request(patient_id, IBUPROFEN_600MG_TABLET, id="d1", status="draft")
    if not prefetch:
        return order_sign(patient_id, [draft])
    warfarin = medication_request(patient_id, WARFARIN_5MG_TABLET, id="w1")
    return order_sign(
        patient_id,
        [draft],
        prefetch={
            "patient": {"resourceType": "Patient", "id": patient_id, "gender": "female"},
            "medicationRequests": searchset([warfarin]),
            "medicationStatements": None,
            "allergies": searchset(),
            "serviceRequests": searchset(),
        },
    )


# --- stand-ins for a dependency that comes back, or hangs --------------------------------------


class Forwarder:
    """A TCP forwarder on ``port`` to ``target``: the dependency "comes back" on that port."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers (a hung HAPI)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(Exception):
            await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


# --- Redis down -----------------------------------------------------------------------------------


async def test_redis_down_api_keeps_serving_and_revocation_holds(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    """/api: login, reads, logout work; the revoked token is refused (PostgreSQL answers); once
    Redis is back the deferred deny-list entry reaches it."""
    port = free_port()
    before = degraded_count("revocation", "postgres")
    async with client(redis_down(settings, port)) as (http, app):
        logged_in = await login(http, world)
        assert logged_in.status_code == 200, logged_in.text
        token = logged_in.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        me = await http.get("/api/auth/me", headers=bearer)
        assert me.status_code == 200, me.text
        patients = await http.get("/api/patients", headers=bearer, params={"_count": 1})
        assert patients.status_code == 200, patients.text
        assert patients.headers["content-type"].startswith("application/json")

        logout = await http.post("/api/auth/logout", headers=bearer)
        assert logout.status_code == 204, logout.text
        problem(await http.get("/api/auth/me", headers=bearer), 401, "authentication_required")
        assert degraded_count("revocation", "postgres") > before

        # Readiness names Redis (operators see the degraded mode) but stays 200: the replica
        # keeps its traffic, as the doors keep serving.
        ready = await http.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["failing"] == ["redis"]

        real_redis = create_redis(settings)
        key = DENY_KEY_PREFIX + jti_of(token)
        try:
            assert await real_redis.exists(key) == 0, "Redis was down: the entry is deferred"
            # Redis comes back on the same address: the next check writes the deferred entry.
            host, redis_port = _redis_address(settings)
            forwarder = Forwarder(port, (host, redis_port))
            await forwarder.start()
            try:
                redis_health(resources(app).redis).retry_after_seconds = 0.0
                again = await login(http, world)
                assert again.status_code == 200, again.text
                fresh = {"Authorization": f"Bearer {again.json()['access_token']}"}
                assert (await http.get("/api/auth/me", headers=fresh)).status_code == 200
                assert await real_redis.exists(key) == 1
                assert not redis_health(resources(app).redis).degraded
                assert not redis_health(resources(app).redis).pending_denials
            finally:
                await forwarder.stop()
        finally:
            await real_redis.aclose()

    # Any other process (here: an app on the real Redis) refuses the token too.
    async with client(settings) as (real, _):
        problem(await real.get("/api/auth/me", headers=bearer), 401, "authentication_required")


def _redis_address(settings: Settings) -> tuple[str, int]:
    parts = urlsplit(settings.redis.url.get_secret_value())
    return parts.hostname or "127.0.0.1", parts.port or 6379


async def test_redis_down_login_throttle_counts_in_process(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    limited = settings_with(
        redis_down(settings, free_port()), "auth", login_attempts_per_ip_per_minute=2
    )
    before = degraded_count("auth_throttle", "local")
    async with client(limited) as (http, _):
        for _ in range(2):
            problem(await login(http, world, "wrong-password-123"), 401, "authentication_required")
        throttled = problem(await login(http, world), 429, "too_many_requests")
        assert int(throttled["retry_after"]) > 0
    assert degraded_count("auth_throttle", "local") > before


async def test_redis_down_fhir_keeps_serving_with_a_local_rate_limit(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    limited = settings_with(redis_down(settings, free_port()), "gateway", rate_limit_per_minute=3)
    before = degraded_count("fhir_rate_limit", "local")
    async with client(limited) as (http, _):
        for _ in range(3):
            read = await http.get(f"/fhir/Patient/{world.patient_id}", headers=world.auth())
            assert read.status_code == 200, read.text
            assert read.json()["id"] == world.patient_id
        over = outcome(
            await http.get(f"/fhir/Patient/{world.patient_id}", headers=world.auth()),
            429,
            "too_many_requests",
        )
        assert over["issue"][0]["code"] == "throttled"
    assert degraded_count("fhir_rate_limit", "local") >= before + 4


async def test_redis_down_fhir_search_served_but_paging_fails_closed(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    """What has no durable copy (page and export-job ownership) is refused for that interaction
    only: the search itself is answered; its next page, paging and export are 503."""
    before = degraded_count("fhir_pages", "refused")
    skipped = degraded_count("fhir_pages", "skipped")
    async with client(redis_down(settings, free_port())) as (http, _):
        search = await http.get("/fhir/Patient", params={"_count": 1}, headers=world.auth())
        assert search.status_code == 200, search.text
        bundle = search.json()
        assert bundle["resourceType"] == "Bundle"
        assert bundle.get("entry"), bundle
        next_links = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        assert next_links, bundle  # two patients, one per page
        # Its page ids could not be registered (Redis down): the next page is refused, never
        # served unchecked.
        assert degraded_count("fhir_pages", "skipped") > skipped
        page_query = urlsplit(next_links[0]).query
        paging = await http.get(f"/fhir?{page_query}", headers=world.auth())
        outcome(paging, 503, "dependency_unavailable")
        assert paging.headers["retry-after"]

        exporter = {"X-API-Key": world.exporter_key, "Accept": FHIR_JSON}
        poll = await http.get(
            "/fhir/$export-poll-status", params={"_jobId": str(uuid.uuid4())}, headers=exporter
        )
        outcome(poll, 503, "dependency_unavailable")
        # Refused before HAPI is asked: a job nobody could poll is not started.
        kickoff = await http.get(
            "/fhir/Patient/$export",
            params={"_type": "Patient"},
            headers={**exporter, "Prefer": "respond-async"},
        )
        outcome(kickoff, 503, "dependency_unavailable")
    assert degraded_count("fhir_pages", "refused") >= before + 3


async def test_redis_down_cds_fails_closed(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    """The CDS client's ``jti`` replay check lives in Redis only: no call is accepted unchecked."""
    async with client(redis_down(settings, free_port())) as (http, _):
        discovery = await http.get(
            "/cds-services", headers=cds_headers(world, settings, "/cds-services")
        )
        problem(discovery, 503, "dependency_unavailable")


# --- PostgreSQL down ------------------------------------------------------------------------------


async def test_postgres_down_every_door_fails_closed_with_503(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    async with client(postgres_down(settings, free_port())) as (http, _):
        login_down = problem(await login(http, world), 503, "database_unavailable")
        assert login_down["status"] == 503
        api = await http.get("/api/patients", headers=world.auth())
        problem(api, 503, "database_unavailable")
        assert api.headers["retry-after"]
        problem(await http.get("/api/auth/me", headers=world.auth()), 503, "database_unavailable")
        problem(
            await http.get("/api/audit/records", headers=world.auth(Role.ADMIN)),
            503,
            "database_unavailable",
        )

        fhir = await http.get(f"/fhir/Patient/{world.patient_id}", headers=world.auth())
        outcome(fhir, 503, "database_unavailable")
        assert fhir.json()["issue"][0]["code"] == "transient"

        cds = await http.get("/cds-services", headers=cds_headers(world, settings, "/cds-services"))
        assert cds.status_code == 503, cds.text

        # What needs no database still answers.
        assert (await http.get("/health")).status_code == 200
        metadata = await http.get("/fhir/metadata")
        assert metadata.status_code == 200, metadata.text
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["postgres"]


# --- HAPI down ------------------------------------------------------------------------------------


async def test_hapi_down_business_api_and_gateway_answer_503(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    async with client(hapi_down(settings, free_port())) as (http, _):
        problem(await http.get("/api/patients", headers=world.auth()), 503, "fhir_unavailable")
        problem(
            await http.get(f"/api/patients/{world.patient_id}", headers=world.auth()),
            503,
            "fhir_unavailable",
        )
        # Identity does not need HAPI.
        assert (await login(http, world)).status_code == 200
        assert (await http.get("/api/auth/me", headers=world.auth())).status_code == 200

        gateway = await http.get(f"/fhir/Patient/{world.patient_id}", headers=world.auth())
        outcome(gateway, 503, "fhir_unavailable")
        outcome(await http.get("/fhir/metadata"), 503, "fhir_unavailable")


async def test_hapi_hanging_answers_504(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    async with silent_server() as port, client(hapi_down(settings, port, timeout=1.0)) as (http, _):
        problem(await http.get("/api/patients", headers=world.auth()), 504, "fhir_timeout")
        gateway = await http.get(f"/fhir/Patient/{world.patient_id}", headers=world.auth())
        outcome(gateway, 504, "fhir_timeout")
        assert gateway.json()["issue"][0]["code"] == "timeout"


async def test_hapi_down_cds_answers_from_prefetch_else_503(
    client: Client, world: OutageWorld, settings: Settings
) -> None:
    path = "/cds-services/order-sign"
    async with client(hapi_down(settings, free_port())) as (http, _):
        discovery = await http.get(
            "/cds-services", headers=cds_headers(world, settings, "/cds-services")
        )
        assert discovery.status_code == 200, discovery.text

        answered = await http.post(
            path,
            json=signing_call(world.patient_id, prefetch=True),
            headers=cds_headers(world, settings, path),
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["cards"], answered.text

        fetching = await http.post(
            path,
            json=signing_call(world.patient_id, prefetch=False),
            headers=cds_headers(world, settings, path),
        )
        problem(fetching, 503, "fhir_unavailable")
