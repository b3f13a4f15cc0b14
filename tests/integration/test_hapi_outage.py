"""HAPI goes away and comes back: the API degrades to clean 503s and recovers by itself.

The same in-process app instance (``api`` from tests/conftest.py: one lifespan, one pooled FHIR
client) lives through the whole outage: HAPI's process is really stopped and started again through
the devstack. Marked ``disruptive``, so it runs after every other test
(tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from support.principals import acting_as, make_principal

from ehr.core.config import Settings
from ehr.devstack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]

# HAPI restarts in 20-120 s on a small machine (its schema already exists).
RECOVERY_TIMEOUT_SECONDS = 300.0


@pytest.fixture(autouse=True)
def physician(app: FastAPI, settings: Settings) -> Iterator[None]:
    """The business routes need a caller: a physician of the default tenant (injected)."""
    with acting_as(app, make_principal(settings.fhir.default_tenant, "physician")):
        yield


@pytest.fixture
def stack() -> Stack:
    stack = Stack.from_settings()
    assert stack.hapi_running(), "HAPI is not answering: `make test` starts the stack first"
    return stack


async def _ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/ready")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _wait_for_ready(client: httpx.AsyncClient, within_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + within_seconds
    while True:
        status, body = await _ready(client)
        if status == 200:
            return body
        waited = f"{within_seconds:.0f} s"
        assert time.monotonic() < deadline, f"/ready still {status} after {waited}: {body}"
        await asyncio.sleep(1.0)


async def test_api_degrades_and_recovers_when_hapi_stops(
    api: httpx.AsyncClient, settings: Settings, stack: Stack
) -> None:
    client = api  # tests/conftest.py: the session's app, lifespan running, one pooled FHIR client
    status, body = await _ready(client)
    assert status == 200, body
    warm = await client.get("/api/patients", params={"_count": 1})
    assert warm.status_code == 200, warm.text

    await asyncio.to_thread(stack.stop_hapi)
    try:
        assert not stack.hapi_running()

        started = time.monotonic()
        status, body = await _ready(client)
        elapsed = time.monotonic() - started
        assert status == 503, body
        assert elapsed < settings.ready.timeout_seconds + 1.0, f"/ready took {elapsed:.1f} s"
        assert body["status"] == "not_ready"
        assert body["failing"] == ["hapi"]
        assert body["checks"]["hapi"]["status"] == "fail"
        assert body["checks"]["postgres"]["status"] == "ok"
        assert body["checks"]["redis"]["status"] == "ok"

        down = await client.get("/api/patients")
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        problem = down.json()
        assert problem["code"] == "fhir_unavailable"
        assert problem["status"] == 503
    finally:
        # Whatever happened above, leave HAPI running for whoever comes next.
        await asyncio.to_thread(stack.start_hapi, wait=True)

    body = await _wait_for_ready(client, RECOVERY_TIMEOUT_SECONDS)
    assert body["failing"] == []
    back = await client.get("/api/patients", params={"_count": 1})
    assert back.status_code == 200, back.text
    assert back.headers["content-type"].startswith("application/json")
