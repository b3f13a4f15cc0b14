"""Logs, metrics and traces for the service.

Logs
    structlog, one line per event, JSON by default (``settings.log``). Event names are dotted
    (``"http.request.completed"``); every line carries the request id from
    :data:`ehr.core.request_context.request_id_var`. Standard-library loggers (uvicorn, SQLAlchemy,
    httpx) are rendered by the same formatter. Never log PHI: resource types, ids and tenants
    only. uvicorn's own access log is silenced because it prints query strings (which carry search
    terms such as names); :class:`ehr.core.middleware.MetricsMiddleware` writes a PHI-free access
    line.

Metrics
    Prometheus on the default registry: ``ehr_http_requests_total{method,route,status}`` and
    ``ehr_http_request_duration_seconds{method,route}``, labelled with the *route template*
    (``/api/patients/{patient_id}``), never the raw path. ``GET /metrics`` serves the registry
    (including the FHIR client's ``ehr_fhir_request_duration_seconds``). With several workers
    (``ehr serve``), each writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` and /metrics adds
    them up (prometheus_client's multiprocess mode).

Traces
    OpenTelemetry for FastAPI, httpx and SQLAlchemy when ``settings.telemetry.exporter`` is
    ``console`` or ``otlp`` (``none``, the default, installs nothing). Query strings are removed
    from span URLs for the same reason as above.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

import structlog
from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from ehr.core.config import LogSettings, TelemetrySettings
from ehr.core.request_context import request_id_var

__all__ = [
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "MULTIPROCESS_ENV",
    "UNMATCHED_ROUTE",
    "Tracing",
    "add_request_id",
    "configure_logging",
    "configure_tracing",
    "prepare_multiprocess_metrics",
]

# prometheus_client's multiprocess directory: set (by ``ehr serve``, before the workers start)
# when several worker processes answer /metrics, each only knowing its own samples otherwise.
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# Route label for requests that matched no route (404s, requests refused before routing): one
# label value instead of one per scanned path.
UNMATCHED_ROUTE: Final = "<unmatched>"

HTTP_REQUESTS: Final = Counter(
    "ehr_http_requests",  # exposed as ehr_http_requests_total
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION: Final = Histogram(
    "ehr_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Loggers whose lines we re-route through structlog's formatter (they keep their own levels).
_FOREIGN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "sqlalchemy", "httpx", "alembic")


def add_request_id(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: put the current request's id on the line (``None`` outside one)."""
    event_dict.setdefault("request_id", request_id_var.get())
    return event_dict


def configure_logging(settings: LogSettings) -> None:
    """Configure structlog and the standard-library root logger (idempotent)."""
    level = logging.getLevelName(settings.level)
    # What no line of ours prints is not computed per record (the logging HOWTO's
    # "Optimization"): the caller's file and line (a stack walk: half the cost of a line),
    # thread, process and task names. Every request writes an access line.
    logging._srcfile = None  # the documented switch
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.json_format
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            # The level filter first: a debug line below the level costs one check, not the
            # context merge and the timestamp (docs/adr/0009, cost section).
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.set_name("ehr")
    root = logging.getLogger()
    # Replace only our own handler so test harnesses (pytest's capture) keep theirs.
    for existing in list(root.handlers):
        if existing.get_name() == "ehr":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
    # httpx logs every request URL at INFO, query string included (FHIR search terms are PHI).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # uvicorn's access line contains the query string (search terms can be PHI): silence it.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True


# --- tracing ------------------------------------------------------------------------------------


def _path_only(url: str) -> str:
    return url.split("?", 1)[0]


def _strip_server_query(span: Any, scope: Mapping[str, Any]) -> None:
    """FastAPI server hook: drop the query string from the span's URL attributes."""
    if span is None or not span.is_recording():
        return
    path = str(scope.get("path", ""))
    span.set_attribute("http.target", path)
    span.set_attribute("url.query", "")
    attributes = getattr(span, "attributes", None) or {}
    url = attributes.get("http.url")
    if isinstance(url, str):
        span.set_attribute("http.url", _path_only(url))


def _strip_client_query(span: Any, request: Any) -> None:
    """httpx client hook: drop the query string (FHIR search terms) from the span's URL."""
    if span is None or not span.is_recording():
        return
    url = _path_only(str(request.url))
    span.set_attribute("http.url", url)
    span.set_attribute("url.full", url)


async def _strip_client_query_async(span: Any, request: Any) -> None:
    _strip_client_query(span, request)


class Tracing:
    """OpenTelemetry wiring for one app: created by :func:`configure_tracing`.

    ``instrument_clients`` (lifespan start) instruments httpx and the SQLAlchemy engine;
    ``shutdown`` (lifespan end) undoes it and flushes the exporter.
    """

    def __init__(self, settings: TelemetrySettings) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
            SpanExporter,
        )

        self.provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name})
        )
        exporter: SpanExporter
        if settings.exporter == "console":
            exporter = ConsoleSpanExporter()
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._instrumented_clients = False

    def instrument_app(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            server_request_hook=_strip_server_query,
            excluded_urls="/health,/ready,/metrics",
            exclude_spans=["receive", "send"],
        )

    def instrument_clients(self, engine: AsyncEngine) -> None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        httpx_instrumentor = HTTPXClientInstrumentor()
        if not httpx_instrumentor.is_instrumented_by_opentelemetry:
            httpx_instrumentor.instrument(
                tracer_provider=self.provider,
                request_hook=_strip_client_query,
                async_request_hook=_strip_client_query_async,
            )
        sqlalchemy_instrumentor = SQLAlchemyInstrumentor()
        if not sqlalchemy_instrumentor.is_instrumented_by_opentelemetry:
            # The instrumentation's declared range stops below SQLAlchemy 2.1, but the engine
            # events it hooks are unchanged in 2.1: skip the version check.
            sqlalchemy_instrumentor.instrument(
                engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
            )
        self._instrumented_clients = True

    def shutdown(self) -> None:
        if self._instrumented_clients:
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            HTTPXClientInstrumentor().uninstrument()
            SQLAlchemyInstrumentor().uninstrument()
            self._instrumented_clients = False
        self.provider.shutdown()


def configure_tracing(app: FastAPI, settings: TelemetrySettings) -> Tracing | None:
    """Instrument ``app`` for tracing per ``settings``; ``None`` when the exporter is ``none``.

    The FastAPI instrumentation must be installed before the app starts (it adds middleware);
    httpx and SQLAlchemy are instrumented by the lifespan via :meth:`Tracing.instrument_clients`.
    """
    if settings.exporter == "none":
        return None
    tracing = Tracing(settings)
    tracing.instrument_app(app)
    return tracing


def prepare_multiprocess_metrics(workers: int) -> None:
    """Before ``workers`` (> 1) processes start: an empty multiprocess directory for their
    samples (the operator's ``PROMETHEUS_MULTIPROC_DIR`` if set, emptied, else a new one)."""
    if workers <= 1:
        return
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="ehr-metrics-")
