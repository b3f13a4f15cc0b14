"""Session fixtures shared by unit and integration tests.

``settings``  Settings() — the defaults point at the local stack (``make test`` starts it)
``app``       create_app(settings)
``api``       an httpx.AsyncClient calling ``app`` in-process, with its lifespan running
``run_id``    tags what this test run creates (HAPI ``meta.tag`` urn:ehr:test|<run_id>)

Unit tests never reach a server: the lifespan opens pools lazily, and HAPI is mocked by respx
where a test needs it. Shared worlds, logins, clients and builders live in ``tests/support/``
(this directory is on ``sys.path``: ``from support.<name> import ...``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from support.in_process import serve

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app

TEST_TAG_SYSTEM = "urn:ehr:test"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        yield client


@pytest.fixture(scope="session")
def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def test_tag(run_id: str) -> dict[str, str]:
    """The ``meta.tag`` coding for HAPI data created by this run."""
    return {"system": TEST_TAG_SYSTEM, "code": run_id}
