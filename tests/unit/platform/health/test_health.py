"""/health never touches a dependency; /ready reports each check and names failures."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import cast

import httpx
import pytest
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.core.config import ReadinessSettings
from ehr.core.dependencies import AppResources
from ehr.entrypoints.api import create_app
from ehr.fhir import FhirUnavailable
from ehr.platform.health.router import check_readiness


async def test_health_is_ok_without_any_dependency(unit_api: httpx.AsyncClient) -> None:
    # Every dependency points at a closed port: /health must not care.
    response = await unit_api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"


async def test_ready_is_503_and_names_every_unreachable_dependency(
    unit_api: httpx.AsyncClient,
) -> None:
    response = await unit_api.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "not_ready"
    assert sorted(body["failing"]) == ["hapi", "postgres", "redis"]
    assert body["checks"]["hapi"]["error"] == "fhir_unavailable"
    for name in ("hapi", "postgres", "redis"):
        check = body["checks"][name]
        assert check["status"] == "fail"
        assert isinstance(check["latency_ms"], float)
        assert check["error"]


class _Probe:
    def __init__(self, *, delay: float = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error

    async def __call__(self, *args: object, **kwargs: object) -> object:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return True


class _Connection:
    def __init__(self, probe: _Probe) -> None:
        self.probe = probe

    async def __aenter__(self) -> _Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, statement: object) -> object:
        return await self.probe()


def _resources(hapi: _Probe, postgres: _Probe, redis: _Probe, timeout: float) -> AppResources:
    fake = SimpleNamespace(
        settings=SimpleNamespace(ready=ReadinessSettings(timeout_seconds=timeout)),
        fhir=SimpleNamespace(ping=hapi),
        engine=SimpleNamespace(connect=lambda: _Connection(postgres)),
        redis=SimpleNamespace(ping=redis),
    )
    return cast(AppResources, fake)


async def test_checks_run_concurrently_each_bounded_by_the_timeout() -> None:
    slow = _Probe(delay=5.0)
    resources = _resources(slow, _Probe(delay=5.0), _Probe(delay=0.01), timeout=0.2)
    started = time.perf_counter()
    report = await check_readiness(resources, resources.fhir)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # concurrent and bounded: not 5 s, not 0.4 s sequentially
    assert report.status == "not_ready"
    assert report.failing == ["hapi", "postgres"]
    assert report.checks["hapi"].error == "timeout"
    assert report.checks["postgres"].error == "timeout"
    assert report.checks["redis"].status == "ok"
    assert report.checks["redis"].error is None


async def test_error_codes_come_from_app_errors_or_the_dependency_name() -> None:
    resources = _resources(
        _Probe(error=FhirUnavailable()),
        _Probe(),
        _Probe(error=ConnectionRefusedError("secret details")),
        timeout=1.0,
    )
    report = await check_readiness(resources, resources.fhir)
    assert report.checks["hapi"].error == "fhir_unavailable"
    assert report.checks["postgres"].status == "ok"
    assert report.checks["redis"].error == "redis_unavailable"
    assert "secret" not in report.model_dump_json()


async def test_all_ok_is_ready() -> None:
    resources = _resources(_Probe(), _Probe(), _Probe(), timeout=1.0)
    report = await check_readiness(resources, resources.fhir)
    assert report.status == "ready"
    assert report.failing == []


async def test_ready_is_degraded_not_503_when_only_redis_fails(
    unit_settings: SettingsFactory, make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehr.platform.health import router as health_router

    async def fake_check(name: str, probe: object, bound: float) -> health_router.CheckResult:
        if name == "redis":
            return health_router.CheckResult(
                status="fail", latency_ms=1.0, error="redis_unavailable"
            )
        return health_router.CheckResult(status="ok", latency_ms=1.0)

    monkeypatch.setattr(health_router, "_check", fake_check)
    api: httpx.AsyncClient = await make_api(create_app(unit_settings()))
    response = await api.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["failing"] == ["redis"]
