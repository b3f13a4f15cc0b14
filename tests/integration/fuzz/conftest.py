"""The fuzzing world: the live API (uvicorn, its own process) on the real stack, a tenant with a
user of every role, a registered CDS client, and who may call each operation.

``fuzz_server``   base URL of a uvicorn process running ``ehr.entrypoints.api:create_app`` with the
                  stack's settings (the public URLs point at it, so CDS ``aud`` checks pass)
``fuzz_world``    :class:`FuzzWorld`: tokens by role, burner tokens (for operations that revoke
                  the caller's own credentials), the CDS client key, the operation → role map

Everything made here is removed at the end (tenant, partition, users, CDS client; audit records
stay: the audit log is append-only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cds import new_client_key, register_cds_client, remove_cds_clients
from support.database import open_sessions
from support.fuzz import (
    API_KEY_PREFIX,
    TALLY,
    TOKEN_TTL_SECONDS,
    FuzzWorld,
    operation_callers,
)
from support.ports import free_port
from support.settings import settings_with
from support.tenants import remove_tenants

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app
from ehr.fhir import FhirClient
from ehr.platform.auth.api_keys import create_api_key
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant


@pytest.fixture(scope="session")
def fuzz_server(settings: Settings) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "EHR_GATEWAY__PUBLIC_BASE_URL": base,
        "EHR_CDS_HOOKS__PUBLIC_BASE_URL": base,
        "EHR_AUTH__ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
        "EHR_LOG__LEVEL": "WARNING",
        # Rate limits would turn most of a long run into 429s (tested on their own elsewhere):
        # lifted so the fuzzer reaches what lies behind them.
        "EHR_GATEWAY__RATE_LIMIT_PER_MINUTE": "1000000",
        "EHR_AUTH__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "1000000",
    }
    log = Path(tempfile.gettempdir()) / f"ehr-fuzz-api-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ehr.entrypoints.api:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the API exited ({process.returncode}); see {log}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the API did not become ready; see {log}")
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
async def fuzz_world(fuzz_server: str, settings: Settings, run_id: str) -> AsyncIterator[FuzzWorld]:
    issuing = settings_with(settings, "auth", access_token_ttl_seconds=TOKEN_TTL_SECONDS)
    fhir = FhirClient(settings.fhir)
    slug = f"fz-{run_id[4:]}"
    world = FuzzWorld(base_url=fuzz_server, tenant=slug)
    world.callers = operation_callers(create_app(settings))
    async with open_sessions(settings) as sessions:
        try:
            async with sessions() as session, session.begin():
                tenant, _ = await create_tenant(session, fhir, slug=slug, name="Fuzzing tenant")
            patient = await fhir.for_tenant(slug).create(
                {"resourceType": "Patient", "gender": "unknown", "birthDate": "1970-01-01"}
            )
            world.patient_id = patient["id"]
            async with sessions() as session, session.begin():
                for role in Role:
                    for burner in (False, True):
                        user = await create_user(
                            session,
                            tenant_id=tenant.id,
                            username=f"fuzz.{role.value}{'.burner' if burner else ''}",
                            password=f"fuzz-{run_id}-not-a-secret-{role.value}",
                            roles=[role.value],
                            patient_id=patient["id"] if role is Role.PATIENT else None,
                            granted_by="test",
                            settings=settings,
                        )
                        token = await issue_access_token_for(session, issuing, user)
                        (world.burner_tokens if burner else world.tokens)[role.value] = token
            async with sessions() as session, session.begin():
                for caller in sorted(set(world.callers.values())):
                    if caller.startswith(API_KEY_PREFIX):
                        _, plaintext = await create_api_key(
                            session,
                            tenant_id=tenant.id,
                            name=f"fuzz {caller}",
                            permissions=[caller.removeprefix(API_KEY_PREFIX)],
                            ttl_days=1,
                            created_by="test",
                        )
                        world.tokens[caller] = plaintext
            world.cds_key = new_client_key("ES256")
            world.cds_issuer = f"https://fuzz-{run_id}.cds.example"
            await register_cds_client(
                sessions, tenant_slug=slug, issuer=world.cds_issuer, key=world.cds_key,
                first_party=True,
            )  # fmt: skip
            yield world
        finally:
            await remove_cds_clients(sessions, [world.cds_issuer] if world.cds_issuer else [])
            await remove_tenants([slug], fhir, sessions)
            await fhir.aclose()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY:
        by_status = ", ".join(f"{status}: {count}" for status, count in sorted(TALLY.items()))
        terminalreporter.write_line(f"fuzz: {sum(TALLY.values())} requests ({by_status})")
