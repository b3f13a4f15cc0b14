"""Metrics by route template, /metrics, JSON logs with the request id, tracing wiring."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from support.in_process import ApiFactory
from support.settings import SettingsFactory

from ehr.core.config import LogSettings, TelemetrySettings
from ehr.core.observability import (
    MULTIPROCESS_ENV,
    UNMATCHED_ROUTE,
    Tracing,
    add_request_id,
    configure_logging,
    prepare_multiprocess_metrics,
)
from ehr.core.request_context import request_id_var
from ehr.entrypoints.api import create_app


def _requests(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "ehr_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def _duration_count(method: str, route: str) -> float:
    value = REGISTRY.get_sample_value(
        "ehr_http_request_duration_seconds_count", {"method": method, "route": route}
    )
    return value or 0.0


def _add_item_route(app: FastAPI) -> None:
    @app.get("/api/_test/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}


@pytest.fixture
async def api(unit_settings: SettingsFactory, make_api: ApiFactory) -> httpx.AsyncClient:
    app = create_app(unit_settings())
    _add_item_route(app)
    client: httpx.AsyncClient = await make_api(app)
    return client


async def test_metrics_are_labelled_with_the_route_template(api: httpx.AsyncClient) -> None:
    template = "/api/_test/items/{item_id}"
    before = _requests("GET", template, "200")
    before_duration = _duration_count("GET", template)
    for item_id in ("a1", "b2", "c3"):
        assert (await api.get(f"/api/_test/items/{item_id}")).status_code == 200
    assert _requests("GET", template, "200") == before + 3
    assert _duration_count("GET", template) == before_duration + 3
    exposition = (await api.get("/metrics")).text
    assert 'route="/api/_test/items/{item_id}"' in exposition
    assert "/api/_test/items/a1" not in exposition


async def test_unmatched_paths_share_one_label(api: httpx.AsyncClient) -> None:
    before = _requests("GET", UNMATCHED_ROUTE, "404")
    await api.get("/scanner/probe-1")
    await api.get("/scanner/probe-2")
    assert _requests("GET", UNMATCHED_ROUTE, "404") == before + 2
    assert "/scanner/probe-1" not in (await api.get("/metrics")).text


async def test_error_statuses_are_counted(api: httpx.AsyncClient) -> None:
    template = "/api/patients/{patient_id}"
    # Unauthenticated: refused with 401 (authentication runs before the id is validated).
    before = _requests("GET", template, "401")
    await api.get("/api/patients/not$valid")
    assert _requests("GET", template, "401") == before + 1


async def test_metrics_endpoint_serves_prometheus_text(api: httpx.AsyncClient) -> None:
    await api.get("/health")
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE ehr_http_requests_total counter" in response.text
    assert "# TYPE ehr_http_request_duration_seconds histogram" in response.text
    # Registered by the FHIR client module on the same (default) registry.
    assert "ehr_fhir_request_duration_seconds" in response.text


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    configure_logging(LogSettings(level="INFO", json_format=True))
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "ehr")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_log_lines_are_json_with_event_and_request_id(log_buffer: io.StringIO) -> None:
    token = request_id_var.set("req-42")
    try:
        structlog.get_logger("ehr.test").info("patients.read.completed", resource_id="123")
        logging.getLogger("uvicorn.error").warning("foreign line")
    finally:
        request_id_var.reset(token)
    ours, foreign = _lines(log_buffer)
    assert ours["event"] == "patients.read.completed"
    assert ours["request_id"] == "req-42"
    assert ours["level"] == "info"
    assert ours["resource_id"] == "123"
    assert "timestamp" in ours
    assert foreign["event"] == "foreign line"
    assert foreign["request_id"] == "req-42"


async def test_access_log_has_route_template_and_no_query(
    api: httpx.AsyncClient, log_buffer: io.StringIO
) -> None:
    response = await api.get("/api/_test/items/x9?name=Jane+Doe")
    access = [line for line in _lines(log_buffer) if line["event"] == "http.request.completed"]
    assert len(access) == 1
    assert access[0]["route"] == "/api/_test/items/{item_id}"
    assert access[0]["status"] == 200
    assert access[0]["request_id"] == response.headers["x-request-id"]
    assert "Jane" not in log_buffer.getvalue()


def test_add_request_id_processor() -> None:
    token = request_id_var.set("abc")
    try:
        assert add_request_id(None, "info", {"event": "x"})["request_id"] == "abc"
    finally:
        request_id_var.reset(token)
    assert add_request_id(None, "info", {"event": "x"})["request_id"] is None


def test_tracing_is_off_by_default(unit_settings: SettingsFactory) -> None:
    app = create_app(unit_settings())
    assert app.state.tracing is None


async def test_console_tracing_traces_requests_without_query_strings(
    unit_settings: SettingsFactory, make_api: ApiFactory
) -> None:
    app = create_app(unit_settings(telemetry=TelemetrySettings(exporter="console")))
    _add_item_route(app)
    tracing = app.state.tracing
    assert isinstance(tracing, Tracing)
    exporter = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
    api: httpx.AsyncClient = await make_api(app)
    response = await api.get("/api/_test/items/7?name=Jane+Doe")
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server = [span for span in spans if span.kind.name == "SERVER"]
    assert server
    attributes = dict(server[0].attributes or {})
    assert attributes.get("http.route") == "/api/_test/items/{item_id}"
    assert "Jane" not in json.dumps({k: str(v) for k, v in attributes.items()})


def test_several_workers_share_one_emptied_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)
    prepare_multiprocess_metrics(1)  # one worker: its own registry, nothing set
    assert MULTIPROCESS_ENV not in os.environ
    prepare_multiprocess_metrics(2)  # several: a fresh directory the workers inherit
    created = Path(os.environ[MULTIPROCESS_ENV])
    assert created.is_dir()
    assert not list(created.iterdir())
    created.rmdir()
    # An operator's directory is used and emptied of a previous run's samples.
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv(MULTIPROCESS_ENV, str(given))
    prepare_multiprocess_metrics(4)
    assert os.environ[MULTIPROCESS_ENV] == str(given)
    assert not list(given.iterdir())
