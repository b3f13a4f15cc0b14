"""The TypeScript contract package: its generated types match the committed OpenAPI document,
it type-checks (`tsc --noEmit`), and its client logs in and reads a patient against the live API
(real HAPI, PostgreSQL and Redis, the app on a real socket).

npm installs the locked packages (`npm ci`) from the registry on a fresh machine.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.live_server import serve_app
from support.tenant_world import World, open_world

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app
from ehr.platform.auth.service import create_user

pytestmark = pytest.mark.integration

PACKAGE = Path(__file__).resolve().parents[3] / "frontend-contract"
NPM = shutil.which("npm") or "npm"


def _npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed npm commands in the repository's package
        [NPM, *args],
        cwd=PACKAGE,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def installed() -> None:
    done = _npm("ci", "--no-audit", "--no-fund")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-ts", ["ts"]) as made:
        yield made


@pytest.mark.usefixtures("installed")
def test_the_generated_types_are_those_of_the_committed_document(tmp_path: Path) -> None:
    fresh = tmp_path / "schema.d.ts"
    done = _npm("exec", "--", "openapi-typescript", "openapi.json", "--output", str(fresh))
    assert done.returncode == 0, done.stdout + done.stderr
    committed = (PACKAGE / "src" / "schema.d.ts").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, (
        "frontend-contract/src/schema.d.ts is stale: run `npm run generate` in frontend-contract/"
    )


@pytest.mark.usefixtures("installed")
def test_the_package_type_checks() -> None:
    done = _npm("run", "typecheck")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.usefixtures("installed")
async def test_the_generated_client_logs_in_and_reads_a_patient(
    world: World, settings: Settings
) -> None:
    tenant = world.tenants["ts"]
    password = "-".join(secrets.token_urlsafe(6) for _ in range(4))
    async with world.sessionmaker() as session, session.begin():
        await create_user(
            session,
            tenant_id=tenant.tenant_id,
            username="ts.client",
            password=password,
            roles=["front_desk"],
            granted_by="test",
            settings=settings,
        )
    async with serve_app(create_app(settings)) as port:
        done = await asyncio.to_thread(
            _npm,
            "run",
            "test:live",
            env={
                "EHR_API_URL": f"http://127.0.0.1:{port}",
                "EHR_TENANT": tenant.slug,
                "EHR_USERNAME": "ts.client",
                "EHR_PASSWORD": password,
                "EHR_PATIENT_ID": str(tenant.patient["id"]),
            },
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 2" in done.stdout, done.stdout
