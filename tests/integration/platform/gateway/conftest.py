"""Fixtures of the gateway's integration tests.

``gw``          two tenants (``ga``, ``gb``) with a user of every role and real tokens, built by the
                acceptance world's helpers (tests/integration/platform/authz/authz_world.py)
``allow_all``   replaces the SMART policy by one that allows everything unchanged, so these tests
                exercise the gateway's own mechanics (the policy has its own tests)
``make_client`` an in-process client for an app built with other settings (timeouts, limits)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from support.tenant_world import TenantWorld, World, make_tenant, remove_tenants

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.entrypoints.api import create_app
from ehr.fhir import FhirClient
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway import enforcement


@pytest.fixture(scope="session")
async def gw(settings: Settings, run_id: str) -> AsyncIterator[World]:
    engine = create_engine(settings.db)
    sessions = create_sessionmaker(engine)
    fhir = FhirClient(settings.fhir)
    made: list[str] = []
    try:
        tenants: dict[str, TenantWorld] = {}
        for label in ("ga", "gb"):
            made.append(f"z-{run_id[4:]}-{label}")
            tenants[label] = await make_tenant(label, run_id, sessions, fhir, settings)
        yield World(
            run=run_id, tenants=tenants, sessionmaker=sessions, fhir=fhir, settings=settings
        )
    finally:
        try:
            await remove_tenants(made, fhir, sessions)
        finally:
            await fhir.aclose()
            await engine.dispose()


@dataclass(frozen=True, slots=True)
class _Interaction:
    kind: str
    method: str
    resource_type: str | None
    resource_id: str | None
    operation: str | None
    params: tuple[tuple[str, str], ...]
    conditional: bool = False


def _allow(principal: Principal, interaction: Any) -> None:
    return None


def _same(principal: Principal, interaction: Any) -> Any:
    return interaction


def _allow_bundle(principal: Principal, bundle: Mapping[str, Any]) -> None:
    return None


ALLOW_ALL = SimpleNamespace(
    FhirInteraction=_Interaction,
    authorize=_allow,
    constrain=_same,
    authorize_bundle=_allow_bundle,
)


@pytest.fixture
def allow_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enforcement, "load_policy", lambda: ALLOW_ALL)


@pytest.fixture
def make_client(
    settings: Settings,
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    @asynccontextmanager
    async def make(**updates: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings.model_copy(update=updates))
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
            ) as client,
        ):
            yield client

    return make
