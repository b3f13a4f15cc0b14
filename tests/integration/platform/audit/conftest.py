"""Fixtures for the audit trail against the real PostgreSQL.

Everything runs in a throwaway app schema (``test_audit_<hex>``, migrated to head and dropped at
the end of the session), so audit rows — which the append-only trigger forbids deleting — never
land in the shared ``ehr_app`` schema. Each test uses its own tenant slug (``t-<hex>``).

``audit_settings``  Settings whose ``db.app_schema`` is the throwaway schema
``audit_engine``    an engine on it (schema_translate_map applied)
``audit_app``       create_app(audit_settings) plus test-only PHI routes under ``/api/_test/phi``
``audit_api``       httpx client on ``audit_app`` with its lifespan running
``act_as``          ``act_as(principal)``: the authenticated principal of the next requests
                    (a dependency override; ``act_as(None)``: real authentication again)
``physician_tenant``  a tenant slug of the test's own whose physician is the caller
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Header
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support.audit_trail import PHI_MARKER, ActAs, new_tenant
from support.database import Sessions
from support.in_process import serve
from support.principals import make_principal, override_principal
from support.settings import settings_with

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.migrate import upgrade
from ehr.core.dependencies import SessionDep
from ehr.core.errors import ConflictError, NotFoundError
from ehr.entrypoints.api import create_app
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal


def _phi_router() -> APIRouter:
    router = APIRouter(prefix="/api/_test/phi")
    reader = RequirePermission(Permission.PATIENT_READ)

    @router.get("/{patient_id}", dependencies=[reader])
    async def read(
        patient_id: str,
        audit: PhiAudit,
        reason: Annotated[str | None, Header(alias="X-Test-Break-Glass")] = None,
    ) -> dict[str, str]:
        audit.access(
            "patient:read",
            resource_type="Patient",
            resource_id=patient_id,
            patient_id=patient_id,
            break_glass=reason is not None,
            break_glass_reason=reason,
        )
        return {"id": patient_id, "name": PHI_MARKER}

    @router.get("/{patient_id}/observations", dependencies=[reader])
    async def observations(patient_id: str, audit: PhiAudit) -> dict[str, Any]:
        for observation in ("o-1", "o-2"):
            audit.access(
                "clinical:read",
                resource_type="Observation",
                resource_id=observation,
                patient_id=patient_id,
            )
        return {"patient": patient_id, "note": PHI_MARKER}

    @router.get("/{patient_id}/gone", dependencies=[reader])
    async def gone(patient_id: str, audit: PhiAudit) -> None:
        audit.access("patient:read", resource_type="Patient", resource_id=patient_id)
        raise NotFoundError("No such patient")

    @router.post("/{patient_id}/conflict", dependencies=[reader])
    async def conflict(patient_id: str, audit: PhiAudit, session: SessionDep) -> None:
        # Business work in the request's transaction, rolled back by the error; the audit stays.
        await session.execute(text("SELECT 1"))
        audit.access("patient:write", resource_type="Patient", resource_id=patient_id)
        raise ConflictError("Version conflict")

    @router.get("/none/at-all", dependencies=[reader])
    async def nothing(audit: PhiAudit) -> dict[str, str]:
        del audit
        return {"ok": "nothing noted"}

    return router


@pytest.fixture(scope="session")
async def audit_schema(settings: Settings) -> AsyncIterator[str]:
    schema = f"test_audit_{uuid.uuid4().hex[:10]}"
    await upgrade(settings, schema=schema)
    yield schema
    engine = create_engine(settings.db)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def audit_settings(settings: Settings, audit_schema: str) -> Settings:
    return settings_with(settings, "db", app_schema=audit_schema)


@pytest.fixture(scope="session")
async def audit_engine(audit_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(audit_settings.db)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def audit_sessionmaker(audit_engine: AsyncEngine) -> Sessions:
    return create_sessionmaker(audit_engine)


@pytest.fixture(scope="session")
def audit_app(audit_settings: Settings) -> FastAPI:
    app = create_app(audit_settings)
    app.include_router(_phi_router())
    return app


@pytest.fixture(scope="session")
async def audit_api(audit_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(audit_app) as client:
        yield client


@pytest.fixture
def act_as(audit_app: FastAPI) -> Iterator[ActAs]:
    def set_principal(principal: Principal | None) -> None:
        override_principal(audit_app, principal)

    yield set_principal
    override_principal(audit_app, None)


@pytest.fixture
def physician_tenant(act_as: ActAs) -> str:
    tenant = new_tenant()
    act_as(make_principal(tenant, "physician"))
    return tenant
