"""The application factory.

Run with ``uvicorn ehr.main:create_app --factory`` (or ``ehr serve``). There is deliberately no
module-level ``app``: importing this module has no side effects, and tests build apps with their
own settings.

:func:`create_app` configures logging and tracing, installs the one error handler and the
middleware stack, mounts the routers, and gives the app a lifespan that opens ONE pooled
:class:`~ehr.fhir.FhirClient`, the SQLAlchemy async engine and the Redis client, publishes them
as :class:`~ehr.dependencies.AppResources` in the lifespan state (and ``app.state.resources``),
and closes them on shutdown.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio.to_thread
import structlog
from fastapi import FastAPI
from pydantic import ValidationError

from ehr.api_docs import router as api_docs_router
from ehr.audit.router import router as audit_router
from ehr.auth.router import router as auth_router
from ehr.config import Settings, get_settings
from ehr.db.engine import create_engine, create_sessionmaker
from ehr.dependencies import AppResources, LifespanState
from ehr.error_handlers import install_error_handlers
from ehr.fhir import FhirClient
from ehr.gateway.router import router as fhir_gateway_router
from ehr.health.router import router as health_router
from ehr.middleware import install_middleware
from ehr.modules.cds_hooks.router import router as cds_hooks_router
from ehr.modules.medication_safety.dependencies import get_knowledge
from ehr.modules.medication_safety.router import router as medication_safety_router
from ehr.modules.patients.router import router as patients_router
from ehr.observability import configure_logging, configure_tracing, metrics_router
from ehr.redis_store import create_redis

__all__ = ["SettingsError", "create_app", "describe_settings_error", "load_settings"]

logger = structlog.get_logger(__name__)


class SettingsError(SystemExit):
    """Invalid configuration: exits the process with a one-line message (no traceback)."""


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each failing setting, e.g. ``EHR_SECURITY__SECRET_KEY still has ...``."""
    parts: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError) and not item.get("loc"):
            # A model-level check (e.g. default secrets): its message already names the setting.
            parts.append(str(cause))
            continue
        name = "EHR_" + "__".join(str(part).upper() for part in item.get("loc", ()))
        parts.append(f"{name}: {item.get('msg', 'invalid value')}")
    return "; ".join(parts).replace("\n", " ")


def load_settings() -> Settings:
    """Settings from the environment, or exit with a one-line message naming the bad setting."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SettingsError(f"ehr: invalid configuration: {describe_settings_error(exc)}") from None


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
            fhir = FhirClient(settings.fhir)
            stack.push_async_callback(fhir.aclose)
            redis = create_redis(settings)
            stack.push_async_callback(redis.aclose)
            resources = AppResources(
                settings=settings,
                fhir=fhir,
                engine=engine,
                sessionmaker=create_sessionmaker(engine),
                redis=redis,
            )
            app.state.resources = resources
            # The medication-safety knowledge base and RxNorm table (~0.5 s of CPU) are loaded
            # before the first request, not during one: a first CDS call or check would
            # otherwise compete with every other request for the interpreter.
            await anyio.to_thread.run_sync(get_knowledge)
            _freeze_startup_objects()
            logger.info("app.started", env=settings.env.value, tenant=settings.fhir.default_tenant)
            try:
                yield {"resources": resources}
            finally:
                logger.info("app.stopping")
                del app.state.resources

    app = FastAPI(
        title="EHR platform API",
        version="0.1.0",
        description=(
            "Business API (`/api`, errors as RFC 9457 problem+json) in front of HAPI FHIR; "
            "operational endpoints `/health`, `/ready`, `/metrics`."
        ),
        lifespan=lifespan,
        docs_url=None,  # ehr.api_docs serves /docs and /redoc from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)
    tracing = configure_tracing(app, settings.telemetry)
    app.state.tracing = tracing
    app.include_router(api_docs_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(auth_router)
    app.include_router(patients_router)
    app.include_router(medication_safety_router)
    app.include_router(audit_router)
    app.include_router(cds_hooks_router)
    app.include_router(fhir_gateway_router)
    return app
