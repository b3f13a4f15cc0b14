"""The application factory.

Run with ``uvicorn ehr.entrypoints.api:create_app --factory`` (or ``ehr serve``). There is
deliberately no
module-level ``app``: importing this module has no side effects, and tests build apps with their
own settings.

:func:`create_app` configures logging and tracing, installs the one error handler and the
middleware stack, mounts the routers, and gives the app a lifespan that opens ONE pooled
:class:`~ehr.fhir.FhirClient`, the SQLAlchemy async engine and the Redis client, publishes them
as :class:`~ehr.core.dependencies.AppResources` in the lifespan state (and ``app.state.resources``),
and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypedDict

import anyio.to_thread
import structlog
from fastapi import FastAPI

from ehr.core.config import Settings, load_settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.dependencies import AppResources
from ehr.core.error_handlers import install_error_handlers
from ehr.core.middleware import install_middleware
from ehr.core.observability import configure_logging, configure_tracing
from ehr.core.openapi_document import install_openapi_document
from ehr.core.redis_store import create_redis
from ehr.entrypoints.api_docs import router as api_docs_router
from ehr.fhir import FhirClient
from ehr.modules import (
    allergies,
    cds_hooks,
    chart,
    encounters,
    hl7v2,
    medication_safety,
    notes,
    order_sets,
    orders,
    patients,
    pharmacy,
    problems,
    results,
    vitals,
)
from ehr.platform.audit.checkpoints import run_checkpoints
from ehr.platform.audit.router import router as audit_router
from ehr.platform.auth.router import router as auth_router
from ehr.platform.gateway.fast_path import GatewayFastPath
from ehr.platform.gateway.router import router as fhir_gateway_router
from ehr.platform.health.router import router as health_router
from ehr.platform.jobs import router as jobs_router
from ehr.platform.realtime import router as realtime_router
from ehr.platform.smart import router as smart_router
from ehr.platform.webhooks import router as webhooks_router

__all__ = ["LifespanState", "create_app"]

logger = structlog.get_logger(__name__)


class LifespanState(TypedDict):
    """The lifespan state: copied into every request's ``request.state``."""

    resources: AppResources
    fhir: FhirClient


_startup_objects_frozen = False


def _freeze_startup_objects() -> None:
    """Move what startup allocated (modules, the knowledge base, the RxNorm table: ~180,000
    objects) out of the cyclic garbage collector's reach, once per process.

    A full collection otherwise scans them all (~70 ms holding the interpreter): a request that
    allocates much (a large JSON body) triggered one and stalled every other request meanwhile.
    """
    global _startup_objects_frozen
    if _startup_objects_frozen:
        return
    gc.collect()
    gc.freeze()
    _startup_objects_frozen = True


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI app; ``settings`` default to the environment's (see :func:`load_settings`).

    Invalid settings from the environment raise :class:`SettingsError` (a ``SystemExit`` with a
    one-line message), so ``uvicorn --factory`` exits cleanly instead of printing a traceback.
    """
    settings = settings if settings is not None else load_settings()
    configure_logging(settings.log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[LifespanState]:
        async with AsyncExitStack() as stack:
            engine = create_engine(settings.db)
            stack.push_async_callback(engine.dispose)
            if tracing is not None:
                tracing.instrument_clients(engine)
                stack.callback(tracing.shutdown)
            fhir = FhirClient(settings.fhir, http_backend=settings.fhir.http_backend)
            stack.push_async_callback(fhir.aclose)
            redis = create_redis(settings)
            stack.push_async_callback(redis.aclose)
            resources = AppResources(
                settings=settings,
                engine=engine,
                sessionmaker=create_sessionmaker(engine),
                redis=redis,
            )
            app.state.resources = resources
            app.state.fhir = fhir
            # The medication-safety knowledge base and RxNorm table (~0.5 s of CPU) are loaded
            # before the first request, not during one: a first CDS call or check would
            # otherwise compete with every other request for the interpreter.
            await anyio.to_thread.run_sync(medication_safety.get_knowledge)
            # Signed checkpoints over every audit shard's head (one replica writes per round).
            stop_checkpoints = asyncio.Event()
            checkpoints = asyncio.create_task(
                run_checkpoints(
                    resources.sessionmaker,
                    settings,
                    stop_checkpoints,
                    interval_seconds=settings.audit.checkpoint_interval_seconds,
                ),
                name="audit-checkpoints",
            )
            _freeze_startup_objects()
            logger.info("app.started", env=settings.env.value, tenant=settings.fhir.default_tenant)
            try:
                yield {"resources": resources, "fhir": fhir}
            finally:
                logger.info("app.stopping")
                stop_checkpoints.set()
                await checkpoints  # before the engine is disposed
                del app.state.resources, app.state.fhir

    app = FastAPI(
        title="EHR platform API",
        version="0.1.0",
        description=(
            "Business API (`/api`, errors as RFC 9457 problem+json) in front of HAPI FHIR; "
            "operational endpoints `/health`, `/ready`, `/metrics`."
        ),
        lifespan=lifespan,
        docs_url=None,  # ehr.entrypoints.api_docs serves /docs and /redoc from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi_document(app)
    # /fhir interactions skip FastAPI's router, inside all of our middleware (ADR 0009).
    app.add_middleware(GatewayFastPath, fastapi_app=app)
    install_middleware(app, settings)
    tracing = configure_tracing(app, settings.telemetry)
    app.state.tracing = tracing
    # The medication-safety API's include=cds-card is rendered by CDS Hooks' card renderer:
    # medication safety declares the renderer it needs and is handed it here (ADR 0016).
    setattr(app.state, medication_safety.CARD_RENDERER_STATE, cds_hooks.to_cds_card)
    app.include_router(api_docs_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(smart_router)
    app.include_router(patients.router)
    app.include_router(chart.router)
    app.include_router(encounters.router)
    app.include_router(problems.router)
    app.include_router(allergies.router)
    app.include_router(vitals.router)
    app.include_router(results.router)
    app.include_router(results.critical_results_router)
    app.include_router(results.result_policy_router)
    app.include_router(notes.router)
    app.include_router(order_sets.router)
    app.include_router(orders.router)
    app.include_router(orders.policy_router)
    app.include_router(notes.admin_router)
    app.include_router(medication_safety.router)
    app.include_router(audit_router)
    app.include_router(jobs_router)
    app.include_router(realtime_router)
    app.include_router(webhooks_router)
    app.include_router(cds_hooks.router)
    app.include_router(hl7v2.router)
    app.include_router(pharmacy.router)
    app.include_router(pharmacy.queue_router)
    app.include_router(fhir_gateway_router)
    return app
