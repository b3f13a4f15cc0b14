"""Liveness, readiness and metrics (operational contract, plain JSON — not problem+json).

``GET /health`` — liveness: 200 ``{"status": "ok"}``; touches no dependency (a slow database must
not get the process restarted).

``GET /ready`` — readiness: checks HAPI (``FhirClient.ping``), PostgreSQL (``SELECT 1``) and Redis
(``PING``) concurrently, each bounded by ``settings.ready.timeout_seconds``. 200 when all pass;
200 ``degraded`` when only Redis fails (the service keeps serving without it, ADR 0013: taking
every replica out of the load balancer for a helper's outage would turn it into a full one);
else 503. The body always reports every check::

    {"status": "ready" | "degraded" | "not_ready",
     "checks": {"hapi": {"status": "ok" | "fail", "latency_ms": 12.3, "error": "fhir_unavailable"},
                "postgres": {...}, "redis": {...}},
     "failing": ["hapi"]}

``error`` (only on failure) is a stable code: the :class:`~ehr.core.errors.AppError` code when the
dependency raised one, ``timeout`` when the check exceeded the bound, else
``<dependency>_unavailable``. No exception text is returned (it is logged).

``GET /metrics`` — the Prometheus text exposition of this process's registry (public like
``/health``, scraped from inside the cluster; not in the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from pydantic import BaseModel
from sqlalchemy import text

from ehr.core.dependencies import AppResources, ResourcesDep
from ehr.core.errors import AppError
from ehr.core.intake import IntakeRoute
from ehr.core.observability import MULTIPROCESS_ENV
from ehr.fhir import FhirClient
from ehr.fhir.dependencies import FhirClientDep
from ehr.platform.auth.authorization import PublicRoute

__all__ = ["CheckResult", "HealthStatus", "ReadinessReport", "check_readiness", "router"]

logger = structlog.get_logger(__name__)

router = APIRouter(tags=["operations"], route_class=IntakeRoute)

DependencyName = Literal["hapi", "postgres", "redis"]


class HealthStatus(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    status: Literal["ok", "fail"]
    latency_ms: float
    error: str | None = None


# Dependencies the service keeps serving without (degraded mode, ADR 0013).
HELPER_DEPENDENCIES: frozenset[str] = frozenset({"redis"})


class ReadinessReport(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[DependencyName, CheckResult]
    failing: list[DependencyName]


@router.get("/health", response_model=HealthStatus, dependencies=[PublicRoute])
async def health() -> HealthStatus:
    """Liveness: the process answers. Calls no dependency."""
    return HealthStatus()


async def _check(
    name: DependencyName, probe: Callable[[], Awaitable[object]], bound_seconds: float
) -> CheckResult:
    started = time.perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(bound_seconds):
            await probe()
    except TimeoutError:
        error = "timeout"
    except AppError as exc:
        error = exc.code
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; reported, logged
        error = f"{name}_unavailable"
        logger.warning("ready.check.failed", dependency=name, error_type=type(exc).__name__)
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    if error is not None:
        if error != f"{name}_unavailable":
            logger.warning("ready.check.failed", dependency=name, error=error)
        return CheckResult(status="fail", latency_ms=latency_ms, error=error)
    return CheckResult(status="ok", latency_ms=latency_ms)


async def check_readiness(resources: AppResources, fhir: FhirClient) -> ReadinessReport:
    """Run the three dependency checks concurrently and summarise them."""

    async def postgres() -> None:
        async with resources.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def redis() -> None:
        await resources.redis.ping()

    timeout = resources.settings.ready.timeout_seconds
    names: tuple[DependencyName, ...] = ("hapi", "postgres", "redis")
    results = await asyncio.gather(
        _check("hapi", fhir.ping, timeout),
        _check("postgres", postgres, timeout),
        _check("redis", redis, timeout),
    )
    checks = dict(zip(names, results, strict=True))
    failing = [name for name, result in checks.items() if result.status == "fail"]
    status: Literal["ready", "degraded", "not_ready"] = "ready"
    if any(name not in HELPER_DEPENDENCIES for name in failing):
        status = "not_ready"
    elif failing:
        status = "degraded"
    return ReadinessReport(status=status, checks=checks, failing=failing)


@router.get(
    "/ready",
    response_model=ReadinessReport,
    responses={503: {"model": ReadinessReport, "description": "A dependency check failed."}},
    dependencies=[PublicRoute],
)
async def ready(resources: ResourcesDep, fhir: FhirClientDep) -> JSONResponse:
    """Readiness: HAPI, PostgreSQL and Redis each reported; 503 names the failing ones
    (Redis alone failing: 200 ``degraded``, still named in ``failing``)."""
    report = await check_readiness(resources, fhir)
    return JSONResponse(
        report.model_dump(mode="json", exclude_none=True),
        status_code=503 if report.status == "not_ready" else 200,
    )


# Public like /health: scraped from inside the cluster (network policy), never PHI.
@router.get("/metrics", include_in_schema=False, dependencies=[PublicRoute])
def metrics() -> Response:
    """Prometheus text exposition: every worker's samples when ``ehr serve`` runs several
    (``PROMETHEUS_MULTIPROC_DIR``, set by ``ehr serve``), else this process's registry."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
