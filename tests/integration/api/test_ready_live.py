"""Operational endpoints against the real stack: /ready, /metrics, Redis."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from ehr.core.config import Settings
from ehr.core.dependencies import AppResources
from ehr.core.redis_store import create_redis

pytestmark = pytest.mark.integration


async def test_ready_is_200_with_every_check_reported(api: httpx.AsyncClient) -> None:
    response = await api.get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["failing"] == []
    assert set(body["checks"]) == {"hapi", "postgres", "redis"}
    for name, check in body["checks"].items():
        assert check["status"] == "ok", name
        assert check["latency_ms"] >= 0
        assert check.get("error") is None


async def test_metrics_expose_hapi_latency_after_a_call(api: httpx.AsyncClient) -> None:
    # /ready pings HAPI without credentials (the business routes now require authentication).
    assert (await api.get("/ready")).status_code == 200
    exposition = (await api.get("/metrics")).text
    samples = [
        line
        for line in exposition.splitlines()
        if line.startswith("ehr_fhir_request_duration_seconds_count")
    ]
    assert samples, "no HAPI latency histogram samples"
    assert any(float(line.rsplit(" ", 1)[1]) >= 1 for line in samples)
    assert 'route="/ready"' in exposition


async def test_redis_answers_ping(settings: Settings, app: FastAPI, api: httpx.AsyncClient) -> None:
    await api.get("/health")  # the lifespan is running
    resources = app.state.resources
    assert isinstance(resources, AppResources)
    assert await resources.redis.ping() is True
    client = create_redis(settings)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


def test_hapi_histogram_is_on_the_default_registry() -> None:
    names = {metric.name for metric in REGISTRY.collect()}
    assert "ehr_fhir_request_duration_seconds" in names
