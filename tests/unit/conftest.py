"""Unit-test fixtures: apps whose dependencies point at closed ports (no server is ever reached).

``unit_settings``  ``unit_settings(**overrides)``: Settings that reach nothing real
``make_api``       ``await make_api(app)``: a client on ``app`` with its lifespan running
``unit_api``       a client on ``create_app(unit_settings())``

HAPI is mocked with respx at :data:`UNIT_FHIR_BASE`; Postgres and Redis pools are created but
never connect unless a test asks them to (and then fail fast). Tests annotate the factories with
``support.in_process.ApiFactory`` and ``support.settings.SettingsFactory``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from support.in_process import ApiFactory, serve
from support.settings import SettingsFactory

from ehr.core.config import (
    DatabaseSettings,
    FhirSettings,
    ReadinessSettings,
    RedisSettings,
    Settings,
)
from ehr.entrypoints.api import create_app

# Port 9 ("discard") is closed on the test machines: connections are refused at once.
UNIT_FHIR_BASE = "http://127.0.0.1:9/fhir"
UNIT_DB_URL = "postgresql+asyncpg://ehr:unit@127.0.0.1:9/ehr"
UNIT_REDIS_URL = "redis://127.0.0.1:9/0"


@pytest.fixture(scope="session")
def unit_settings() -> SettingsFactory:
    """``unit_settings(**overrides)``: Settings that reach nothing real (a stateless factory,
    so one per session serves module-scoped fixtures too)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            # httpcore: respx's default mocker patches httpcore (the app's default, aiohttp,
            # is what the integration tests run on).
            "fhir": FhirSettings(
                base_url=UNIT_FHIR_BASE,
                connect_timeout_seconds=0.5,
                timeout_seconds=1.0,
                http_backend="httpcore",
            ),
            "db": DatabaseSettings(url=SecretStr(UNIT_DB_URL)),
            "redis": RedisSettings(url=SecretStr(UNIT_REDIS_URL), socket_timeout_seconds=0.5),
            "ready": ReadinessSettings(timeout_seconds=1.0),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def make_api() -> AsyncIterator[ApiFactory]:
    """``await make_api(app)``: a client calling ``app`` in-process with its lifespan running."""
    async with AsyncExitStack() as stack:

        async def make(app: FastAPI) -> httpx.AsyncClient:
            return await stack.enter_async_context(serve(app, raise_app_exceptions=False))

        yield make


@pytest.fixture
async def unit_api(unit_settings: SettingsFactory, make_api: ApiFactory) -> httpx.AsyncClient:
    return await make_api(create_app(unit_settings()))
