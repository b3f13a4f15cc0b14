"""FHIR Bulk Data export by a SMART Backend Services client, end to end against the real HAPI:
a registered client gets a token (``client_credentials`` + ``private_key_jwt``, through authlib),
kicks off system-level and Patient-level ``$export`` jobs on ``/fhir``, polls the status URLs it
is given until the manifests, and downloads the NDJSON files: they hold its own tenant's
resources, none of another tenant's. Without ``system/*.rs`` the export is refused (403
OperationOutcome); a file is not served without a token (401), nor to another tenant's client.

Each job exports one resource type: HAPI runs a job whose steps make a single work chunk straight
through (job fast-tracking) on its next maintenance pass (within a minute); a job of several types
makes several chunks and waits a further pass per step (2-3 minutes)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk
from support.in_process import BASE_URL, client_of, started
from support.tenant_world import TenantWorld, World, open_world

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app
from ehr.platform.smart import register_backend_service

pytestmark = pytest.mark.integration

TOKEN_URL = f"{BASE_URL}/oauth2/token"
PUBLIC = f"{BASE_URL}/fhir"
FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
EXPORT = "system/*.rs"
# This run's own client address: its token requests count against their own throttle window.
PEER = (f"10.78.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 40000)
# A single-type job completes on HAPI's next once-a-minute maintenance pass.
EXPORT_TIMEOUT_SECONDS = 120
# HAPI's 202 asks for Retry-After: 120 whatever the job; it is honoured up to this.
MAX_POLL_PAUSE_SECONDS = 2.0


@dataclass(frozen=True)
class Signer:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class Registered:
    client_id: str
    signer: Signer


@dataclass(frozen=True)
class Seeded:
    patients: frozenset[str]
    observations: frozenset[str]


def _signer() -> Signer:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    kid = f"k-{uuid.uuid4().hex[:8]}"
    public = {**jwk.construct(public_pem, "RS384").to_dict(), "kid": kid, "alg": "RS384"}
    return Signer(kid=kid, private_pem=pem, public_jwk={**public, "use": "sig"})


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-bulk", ("bx", "by")) as opened:
        yield opened


async def _register(world: World, label: str, *scopes: str) -> Registered:
    signer = _signer()
    async with world.sessionmaker() as session, session.begin():
        made = await register_backend_service(
            session,
            tenant=world.tenants[label].slug,
            name=f"bulk export {' '.join(scopes)}",
            jwks={"keys": [signer.public_jwk]},
            scopes=scopes,
        )
    return Registered(client_id=made.client_id, signer=signer)


@pytest.fixture(scope="module")
async def exporter(world: World) -> Registered:
    # Also the narrower scopes: the token endpoint grants a requested scope only if it is one of
    # the client's own (system/*.rs registered does not let it ask for system/Patient.rs).
    return await _register(world, "bx", EXPORT, "system/Observation.rs", "system/Patient.rs")


@pytest.fixture(scope="module")
async def observation_reader(world: World) -> Registered:
    return await _register(world, "bx", "system/Observation.rs")


@pytest.fixture(scope="module")
async def foreign_exporter(world: World) -> Registered:
    return await _register(world, "by", EXPORT)


async def _seed(world: World, tenant: TenantWorld, count: int) -> Seeded:
    fhir = world.fhir.for_tenant(tenant.slug)
    tag = {"system": "urn:ehr:test", "code": world.run}
    patients: set[str] = set()
    observations: set[str] = set()
    for n in range(count):
        patient = await fhir.create(
            {
                "resourceType": "Patient",
                "meta": {"tag": [tag]},
                "name": [{"family": f"Zzbulk{tenant.label}{n}", "given": ["Export"]}],
                "gender": "unknown",
                "birthDate": "1980-02-03",
            }
        )
        patients.add(patient["id"])
        observation = await fhir.create(
            {
                "resourceType": "Observation",
                "meta": {"tag": [tag]},
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{patient['id']}"},
                "valueQuantity": {"value": 60 + n, "unit": "/min"},
            }
        )
        observations.add(observation["id"])
    # The world's own two patients (normal, restricted) are in the partition as well.
    patients |= {tenant.patient["id"], tenant.restricted["id"]}
    return Seeded(patients=frozenset(patients), observations=frozenset(observations))


@pytest.fixture(scope="module")
async def seeded(world: World) -> dict[str, Seeded]:
    mine = await _seed(world, world.tenants["bx"], 2)
    return {"bx": mine, "by": await _seed(world, world.tenants["by"], 1)}


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[Any]:
    gateway = settings.gateway.model_copy(update={"public_base_url": BASE_URL})
    async with started(create_app(settings.model_copy(update={"gateway": gateway}))) as running:
        yield running


async def token(app: Any, registered: Registered, scope: str) -> str:
    """A token of ``registered`` for ``scope``, the way a Backend Services client gets one."""
    oauth = AsyncOAuth2Client(
        client_id=registered.client_id,
        client_secret=registered.signer.private_pem,
        # authlib's default assertion lives an hour; SMART allows at most five minutes.
        token_endpoint_auth_method=PrivateKeyJWT(
            TOKEN_URL,
            alg="RS384",
            headers={"kid": registered.signer.kid},
            claims={"exp": int(time.time()) + 240},
        ),
        scope=scope,
        transport=httpx.ASGITransport(app=app, client=PEER),
    )
    async with oauth:
        answer = await oauth.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert answer["token_type"].lower() == "bearer"
    assert set(answer["scope"].split()) == set(scope.split())
    return str(answer["access_token"])


def bearer(access_token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}", **extra}


def local(url: str) -> str:
    """The path and query of a gateway URL (the in-process client has the base)."""
    assert url.startswith(f"{PUBLIC}/"), url
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def refused(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


async def kick_off(api: httpx.AsyncClient, access_token: str, path: str, type_: str) -> str:
    """Start an export of ``type_`` at ``path``; its status URL."""
    answer = await api.get(
        path,
        params={"_type": type_},
        headers=bearer(access_token, Accept=FHIR_JSON, Prefer="respond-async"),
    )
    assert answer.status_code == 202, answer.text
    status_url = answer.headers["content-location"]
    assert status_url.startswith(f"{PUBLIC}/$export-poll-status?"), status_url
    return status_url


async def manifest_of(api: httpx.AsyncClient, access_token: str, status_url: str) -> Any:
    """Poll the status URL until the manifest, pausing as Retry-After asks (capped)."""
    while True:
        status = await api.get(local(status_url), headers=bearer(access_token))
        if status.status_code != 202:
            break
        retry_after = float(status.headers.get("retry-after", "1"))
        await asyncio.sleep(min(max(retry_after, 0.5), MAX_POLL_PAUSE_SECONDS))
    assert status.status_code == 200, status.text
    assert status.headers["content-type"].startswith("application/json")
    return status.json()


@dataclass(frozen=True)
class Export:
    path: str
    type_: str
    status_url: str
    manifest: dict[str, Any]


# (kick-off path, _type): system level for each type, and the Patient compartment's Observations.
JOBS = (
    ("/fhir/$export", "Patient"),
    ("/fhir/$export", "Observation"),
    ("/fhir/Patient/$export", "Observation"),
)


@pytest.fixture(scope="module")
async def exports(app: Any, exporter: Registered, seeded: dict[str, Seeded]) -> list[Export]:
    """The exporter's jobs (started together, so they finish on the same HAPI pass)."""
    async with client_of(app, peer=PEER) as api:
        access = await token(app, exporter, EXPORT)
        urls = [await kick_off(api, access, path, type_) for path, type_ in JOBS]
        async with asyncio.timeout(EXPORT_TIMEOUT_SECONDS):
            manifests = await asyncio.gather(*(manifest_of(api, access, url) for url in urls))
    return [
        Export(path, type_, url, manifest)
        for (path, type_), url, manifest in zip(JOBS, urls, manifests, strict=True)
    ]


async def test_the_manifests_list_one_file_per_type_behind_the_gateway(
    exports: list[Export], settings: Settings
) -> None:
    hapi = urlsplit(settings.fhir.base_url).netloc
    for export in exports:
        manifest = export.manifest
        assert manifest["requiresAccessToken"] is True
        assert manifest["error"] == []
        assert manifest["request"].startswith(f"{PUBLIC}/{export.path.removeprefix('/fhir/')}")
        assert [item["type"] for item in manifest["output"]] == [export.type_], manifest
        for item in manifest["output"]:
            assert item["url"].startswith(f"{PUBLIC}/Binary/"), item
        assert hapi not in json.dumps(manifest)


async def test_the_files_hold_the_seeded_resources_of_this_tenant_only(
    app: Any,
    world: World,
    exporter: Registered,
    exports: list[Export],
    seeded: dict[str, Seeded],
) -> None:
    mine, theirs = seeded["bx"], seeded["by"]
    async with client_of(app, peer=PEER) as api:
        access = await token(app, exporter, EXPORT)
        for export in exports:
            lines: list[dict[str, Any]] = []
            for item in export.manifest["output"]:
                answer = await api.get(local(item["url"]), headers=bearer(access, Accept=NDJSON))
                assert answer.status_code == 200, answer.text
                lines += [json.loads(line) for line in answer.text.splitlines() if line.strip()]
            assert {line["resourceType"] for line in lines} == {export.type_}, export
            ids = [line["id"] for line in lines]
            assert len(ids) == len(set(ids)), export
            expected = mine.patients if export.type_ == "Patient" else mine.observations
            assert set(ids) == expected, export
            for line in lines:
                if export.type_ == "Observation":
                    assert line["subject"]["reference"].removeprefix("Patient/") in mine.patients
            text = json.dumps(lines)
            for other in theirs.patients | theirs.observations:
                assert other not in text
            assert world.tenants["by"].slug not in text


async def test_another_tenants_exporter_cannot_follow_the_jobs_or_files(
    app: Any, foreign_exporter: Registered, exports: list[Export], seeded: dict[str, Seeded]
) -> None:
    mine = seeded["bx"]
    async with client_of(app, peer=PEER) as api:
        foreign = await token(app, foreign_exporter, EXPORT)
        for export in exports:
            refused(await api.get(local(export.status_url), headers=bearer(foreign)), 404)
            for item in export.manifest["output"]:
                answer = await api.get(local(item["url"]), headers=bearer(foreign, Accept=NDJSON))
                assert answer.status_code == 404, answer.text
                assert not any(i in answer.text for i in mine.patients | mine.observations)


async def test_files_and_status_need_a_token(
    app: Any, exports: list[Export], seeded: dict[str, Seeded]
) -> None:
    mine = seeded["bx"]
    async with client_of(app, peer=PEER) as api:
        for export in exports:
            for item in export.manifest["output"]:
                anonymous = await api.get(local(item["url"]), headers={"Accept": NDJSON})
                assert anonymous.status_code == 401, anonymous.text
                assert anonymous.headers["www-authenticate"].lower().startswith("bearer")
                assert not any(i in anonymous.text for i in mine.patients | mine.observations)
            assert (await api.get(local(export.status_url))).status_code == 401


async def test_without_system_wildcard_read_the_export_is_refused(
    app: Any, exporter: Registered, observation_reader: Registered, exports: list[Export]
) -> None:
    async with client_of(app, peer=PEER) as api:
        # The exporter's own token with fewer scopes; another client that has only one.
        narrowed = await token(app, exporter, "system/Observation.rs system/Patient.rs")
        reader = await token(app, observation_reader, "system/Observation.rs")
        for access in (narrowed, reader):
            headers = bearer(access, Accept=FHIR_JSON, Prefer="respond-async")
            for path in ("/fhir/$export", "/fhir/Patient/$export"):
                for params in ({}, {"_type": "Observation"}):
                    body = refused(await api.get(path, params=params, headers=headers), 403)
                    assert "$export" in json.dumps(body), body
            # What the scopes do grant still works.
            assert (await api.get("/fhir/Observation", headers=bearer(access))).status_code == 200
            # Nor does the token follow the exporter's job, or read its files.
            for export in exports:
                refused(await api.get(local(export.status_url), headers=bearer(access)), 403)
                for item in export.manifest["output"]:
                    answer = await api.get(local(item["url"]), headers=bearer(access))
                    assert answer.status_code == 403, answer.text
