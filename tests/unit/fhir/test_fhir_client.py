"""FhirClient / TenantFhirClient: URLs per tenant, headers, bodies, pooling, metrics, logs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from fhir_factories import (
    BASE_URL,
    TENANT_BASE,
    make_bundle,
    make_capability_statement,
    make_operation_outcome,
    make_patient,
)
from prometheus_client import REGISTRY

from ehr.core.config import FhirSettings
from ehr.core.request_context import request_id_var
from ehr.fhir import (
    FhirClient,
    FhirConflict,
    FhirInvalidRequest,
    FhirPreconditionFailed,
    FhirResourceNotFound,
    FhirTimeout,
    FhirUnavailable,
    FhirUpstreamError,
    TenantFhirClient,
)
from ehr.fhir import transport as transport_module
from ehr.fhir.bundles import batch_bundle, create_entry, transaction_bundle

FHIR_JSON = "application/fhir+json"


def _json(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- URLs per tenant -----------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["DEFAULT", "clinic-7", "Tenant_B", "x"])
async def test_read_goes_to_the_tenant_partition(
    hapi: respx.MockRouter, fhir_client: FhirClient, tenant: str
) -> None:
    route = hapi.get(f"{BASE_URL}/{tenant}/Patient/p-1").respond(json=make_patient(id="p-1"))
    patient = await fhir_client.for_tenant(tenant).read("Patient", "p-1")
    assert patient["id"] == "p-1"
    assert route.call_count == 1


async def test_base_url_trailing_slash_is_ignored(hapi: respx.MockRouter) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient(id="p-1"))
    async with FhirClient(FhirSettings(base_url=f"{BASE_URL}/")) as fhir:
        await fhir.for_tenant("DEFAULT").read("Patient", "p-1")
    assert route.called


async def test_vread(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient/p-1/_history/2").respond(
        json=make_patient(id="p-1", meta={"versionId": "2"})
    )
    patient = await tenant_fhir.vread("Patient", "p-1", "2")
    assert patient["meta"]["versionId"] == "2"
    assert route.called


async def test_search_with_mapping_and_pairs(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Observation").respond(json=make_bundle([]))
    await tenant_fhir.search(
        "Observation",
        {"subject": "Patient/p-1", "date": ["ge2025-01-01", "lt2026-01-01"], "_count": 10},
    )
    await tenant_fhir.search("Observation", [("code", "http://loinc.org|718-7"), ("active", True)])
    first, second = (call.request.url for call in route.calls)
    assert first.params.get_list("date") == ["ge2025-01-01", "lt2026-01-01"]
    assert first.params["subject"] == "Patient/p-1"
    assert first.params["_count"] == "10"
    assert second.params["code"] == "http://loinc.org|718-7"
    assert second.params["active"] == "true"


async def test_a_single_page_search_asks_hapi_to_store_no_search(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Condition").respond(json=make_bundle([]))
    await tenant_fhir.search("Condition", [("patient", "p-1")], single_page=True)
    await tenant_fhir.search("Condition", [("patient", "p-1")])
    single, paged = (call.request for call in route.calls)
    assert single.headers["cache-control"] == "no-store"
    assert "cache-control" not in paged.headers


async def test_next_page_reanchors_hapi_link_on_our_base(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    page_two = make_bundle([make_patient(id="p-2")])
    route = hapi.get(TENANT_BASE, params={"_getpages": "abc", "_getpagesoffset": "20"}).respond(
        json=page_two
    )
    first = make_bundle(
        [make_patient()],
        next_url="http://hapi-internal:8080/fhir/DEFAULT?_getpages=abc&_getpagesoffset=20",
    )
    assert await tenant_fhir.next_page(first) == page_two
    assert route.called
    assert await tenant_fhir.next_page(page_two) is None


async def test_next_page_refuses_links_into_another_tenant(tenant_fhir: TenantFhirClient) -> None:
    other = make_bundle(next_url=f"{BASE_URL}/OTHER?_getpages=abc")
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.next_page(other)


async def test_history_levels(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    instance = hapi.get(f"{TENANT_BASE}/Patient/p-1/_history").respond(json=make_bundle())
    type_level = hapi.get(f"{TENANT_BASE}/Patient/_history").respond(json=make_bundle())
    system = hapi.get(f"{TENANT_BASE}/_history").respond(json=make_bundle())
    await tenant_fhir.history("Patient", "p-1", params={"_count": 5})
    await tenant_fhir.history("Patient")
    await tenant_fhir.history()
    assert instance.calls.last.request.url.params["_count"] == "5"
    assert type_level.called
    assert system.called
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.history(resource_id="p-1")


# --- writes ----------------------------------------------------------------------------------


async def test_create_posts_fhir_json_and_asks_for_the_resource(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.post(f"{TENANT_BASE}/Patient").respond(201, json=make_patient(id="new-1"))
    new = make_patient()
    del new["id"], new["meta"]
    created = await tenant_fhir.create(new)
    assert created["id"] == "new-1"
    request = route.calls.last.request
    assert request.headers["Content-Type"] == FHIR_JSON
    assert request.headers["Accept"] == FHIR_JSON
    assert request.headers["Prefer"] == "return=representation"
    assert "If-None-Exist" not in request.headers
    assert _json(request) == new


@pytest.mark.parametrize(
    ("condition", "header"),
    [
        ({"identifier": "urn:ehr:test:mrn|MRN-0001"}, "identifier=urn:ehr:test:mrn|MRN-0001"),
        ("identifier=urn:ehr:test:mrn|MRN-0001", "identifier=urn:ehr:test:mrn|MRN-0001"),
        ({"family": "O'Neil & Sons"}, "family=O%27Neil%20%26%20Sons"),
        ({"identifier": ["a|1", "b|2"]}, "identifier=a|1&identifier=b|2"),
    ],
)
async def test_conditional_create_header(
    hapi: respx.MockRouter,
    tenant_fhir: TenantFhirClient,
    condition: Any,
    header: str,
) -> None:
    existing = make_patient(id="existing-1")
    route = hapi.post(f"{TENANT_BASE}/Patient").respond(200, json=existing)
    assert await tenant_fhir.create(make_patient(), if_none_exist=condition) == existing
    assert route.calls.last.request.headers["If-None-Exist"] == header


async def test_conditional_create_without_body_reads_the_match(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.post(f"{TENANT_BASE}/Patient").respond(
        200,
        headers={"Location": f"{TENANT_BASE}/Patient/existing-1/_history/3"},
        json=make_operation_outcome("Did not create, matched", severity="information"),
    )
    read = hapi.get(f"{TENANT_BASE}/Patient/existing-1").respond(json=make_patient(id="existing-1"))
    created = await tenant_fhir.create(make_patient(), if_none_exist={"identifier": "a|1"})
    assert created["id"] == "existing-1"
    assert read.called


@pytest.mark.parametrize("condition", ["", "name=\u00e9", "a=1\r\nX-Evil: 1"])
async def test_conditional_create_refuses_bad_conditions(
    tenant_fhir: TenantFhirClient, condition: str
) -> None:
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.create(make_patient(), if_none_exist=condition)


async def test_create_needs_a_resource_type(tenant_fhir: TenantFhirClient) -> None:
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.create({"id": "x"})


@pytest.mark.parametrize(("if_match", "header"), [("3", 'W/"3"'), ('W/"3"', 'W/"3"'), (None, None)])
async def test_update_is_put_with_optional_if_match(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, if_match: str | None, header: str | None
) -> None:
    patient = make_patient(id="p-1")
    route = hapi.put(f"{TENANT_BASE}/Patient/p-1").respond(json=patient)
    await tenant_fhir.update(patient, if_match=if_match)
    request = route.calls.last.request
    assert request.headers.get("If-Match") == header
    assert request.headers["Prefer"] == "return=representation"
    assert _json(request)["id"] == "p-1"


@pytest.mark.parametrize("upstream", [409, 412])
async def test_versioned_update_conflict_is_precondition_failed(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, upstream: int
) -> None:
    hapi.put(f"{TENANT_BASE}/Patient/p-1").respond(
        upstream, json=make_operation_outcome("HAPI-0989: not the current version")
    )
    with pytest.raises(FhirPreconditionFailed) as caught:
        await tenant_fhir.update(make_patient(id="p-1"), if_match="1")
    assert caught.value.status_code == 412
    assert caught.value.extra["upstream_status"] == upstream
    assert caught.value.extra["operation_outcome"]["issue"][0]["code"] == "processing"


async def test_unversioned_update_conflict_stays_a_conflict(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.put(f"{TENANT_BASE}/Patient/p-1").respond(409, json=make_operation_outcome())
    with pytest.raises(FhirConflict):
        await tenant_fhir.update(make_patient(id="p-1"))


async def test_update_needs_id_and_valid_version(tenant_fhir: TenantFhirClient) -> None:
    no_id = make_patient()
    del no_id["id"]
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.update(no_id)
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.update(make_patient(), if_match='W/"1/../2"')


async def test_delete(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    route = hapi.delete(f"{TENANT_BASE}/Patient/p-1").respond(
        200, json=make_operation_outcome("Successfully deleted", severity="information")
    )
    assert await tenant_fhir.delete("Patient", "p-1") is None
    assert route.called


async def test_transaction_and_batch_post_to_the_tenant_root(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.post(TENANT_BASE).respond(json=make_bundle(bundle_type="transaction-response"))
    bundle = transaction_bundle([create_entry(make_patient())])
    await tenant_fhir.transaction(bundle)
    assert _json(route.calls.last.request) == bundle
    assert "Prefer" not in route.calls.last.request.headers
    await tenant_fhir.transaction(bundle, return_resources=True)
    assert route.calls.last.request.headers["Prefer"] == "return=representation"
    await tenant_fhir.batch(batch_bundle([create_entry(make_patient())]))
    assert _json(route.calls.last.request)["type"] == "batch"


async def test_transaction_refuses_other_bundle_types(tenant_fhir: TenantFhirClient) -> None:
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.transaction(batch_bundle([]))
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.batch(transaction_bundle([]))


# --- operations ------------------------------------------------------------------------------


async def test_operation_levels(hapi: respx.MockRouter, tenant_fhir: TenantFhirClient) -> None:
    everything = hapi.get(f"{TENANT_BASE}/Patient/p-1/$everything").respond(json=make_bundle())
    type_level = hapi.post(f"{TENANT_BASE}/Patient/$validate").respond(
        json=make_operation_outcome("ok", severity="information")
    )
    system = hapi.get(f"{TENANT_BASE}/$meta").respond(json={"resourceType": "Parameters"})
    await tenant_fhir.operation(
        "$everything", resource_type="Patient", resource_id="p-1", params={"_count": 50}
    )
    await tenant_fhir.operation(
        "validate", resource_type="Patient", body=make_patient(), method="POST"
    )
    assert await tenant_fhir.operation("$meta") == {"resourceType": "Parameters"}
    assert everything.calls.last.request.url.params["_count"] == "50"
    assert _json(type_level.calls.last.request)["resourceType"] == "Patient"
    assert type_level.calls.last.request.headers["Content-Type"] == FHIR_JSON
    assert system.called


async def test_operation_argument_rules(tenant_fhir: TenantFhirClient) -> None:
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.operation("$validate", body=make_patient())  # body needs POST
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.operation("$everything", resource_id="p-1")
    with pytest.raises(FhirInvalidRequest):
        await tenant_fhir.operation("$a/../../x")


async def test_operation_with_empty_body(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.post(f"{TENANT_BASE}/$mark-all-resources-for-reindexing").respond(204)
    assert await tenant_fhir.operation("mark-all-resources-for-reindexing", method="POST") == {}


# --- request id and headers -------------------------------------------------------------------


async def test_request_id_is_forwarded(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient(id="p-1"))
    token = request_id_var.set("req-7f3a")
    try:
        await tenant_fhir.read("Patient", "p-1")
    finally:
        request_id_var.reset(token)
    assert route.calls.last.request.headers["X-Request-ID"] == "req-7f3a"
    await tenant_fhir.read("Patient", "p-1")
    assert "X-Request-ID" not in route.calls.last.request.headers


async def test_request_id_is_forwarded_on_writes_and_errors(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    create = hapi.post(f"{TENANT_BASE}/Patient").respond(201, json=make_patient())
    missing = hapi.get(f"{TENANT_BASE}/Patient/gone").respond(404)
    token = request_id_var.set("req-2")
    try:
        await tenant_fhir.create(make_patient())
        with pytest.raises(FhirResourceNotFound):
            await tenant_fhir.read("Patient", "gone")
    finally:
        request_id_var.reset(token)
    assert create.calls.last.request.headers["X-Request-ID"] == "req-2"
    assert missing.calls.last.request.headers["X-Request-ID"] == "req-2"


# --- ping ------------------------------------------------------------------------------------


async def test_ping_reads_the_default_tenant_metadata(
    hapi: respx.MockRouter, fhir_client: FhirClient
) -> None:
    route = hapi.get(f"{TENANT_BASE}/metadata").respond(json=make_capability_statement())
    assert await fhir_client.ping() is None
    assert route.calls.last.request.url.params["_summary"] == "true"


@pytest.mark.parametrize(
    ("mock", "error"),
    [
        ({"side_effect": httpx.ConnectError("refused")}, FhirUnavailable),
        ({"side_effect": httpx.ReadTimeout("slow")}, FhirTimeout),
        ({"return_value": httpx.Response(503, text="starting")}, FhirUpstreamError),
        ({"return_value": httpx.Response(200, json=make_patient())}, FhirUpstreamError),
    ],
    ids=["refused", "timeout", "503", "not-a-capability-statement"],
)
async def test_ping_failures(
    hapi: respx.MockRouter, fhir_client: FhirClient, mock: dict[str, Any], error: type[Exception]
) -> None:
    hapi.get(f"{TENANT_BASE}/metadata").mock(**mock)
    with pytest.raises(error):
        await fhir_client.ping(timeout=0.5)


# --- pooling and lifecycle --------------------------------------------------------------------


def test_http_client_settings(fhir_client: FhirClient, fhir_settings: FhirSettings) -> None:
    http = fhir_client.http
    assert http.timeout.connect == fhir_settings.connect_timeout_seconds
    assert http.timeout.read == fhir_settings.timeout_seconds
    assert not http.follow_redirects
    assert not http.trust_env


def test_invalid_default_tenant_fails_at_start() -> None:
    with pytest.raises(FhirInvalidRequest):
        FhirClient(FhirSettings(default_tenant="../x"))


class _CountingTransport(httpx.AsyncBaseTransport):
    """Answers every request itself and remembers which transport instance saw it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/metadata"):
            return httpx.Response(200, json=make_capability_statement())
        if request.url.path.endswith("/Patient"):
            return httpx.Response(200, json=make_bundle([make_patient()]))
        return httpx.Response(200, json=make_patient())


async def test_every_interaction_shares_one_http_client(fhir_settings: FhirSettings) -> None:
    transport = _CountingTransport()
    async with FhirClient(fhir_settings, transport=transport) as fhir:
        http = fhir.http
        a, b = fhir.for_tenant("A"), fhir.for_tenant("B")
        await a.read("Patient", "p-1")
        await b.read("Patient", "p-1")
        await a.search("Patient", {"name": "x"})
        await b.resources("Patient").search(name="x").fetch()
        await fhir.ping()
        assert fhir.http is http
    assert [r.url.path for r in transport.requests] == [
        "/fhir/A/Patient/p-1",
        "/fhir/B/Patient/p-1",
        "/fhir/A/Patient",
        "/fhir/B/Patient",
        "/fhir/DEFAULT/metadata",
    ]
    assert http.is_closed


async def test_injected_http_client_is_not_closed(fhir_settings: FhirSettings) -> None:
    async with httpx.AsyncClient(transport=_CountingTransport()) as http:
        fhir = FhirClient(fhir_settings, http_client=http)
        await fhir.for_tenant("DEFAULT").read("Patient", "p-1")
        await fhir.aclose()
        assert not http.is_closed
        assert fhir.http is http


def test_http_client_and_transport_are_exclusive(fhir_settings: FhirSettings) -> None:
    with pytest.raises(ValueError, match="either"):
        FhirClient(fhir_settings, http_client=httpx.AsyncClient(), transport=_CountingTransport())


# --- metrics and logs -------------------------------------------------------------------------


def _observations(method: str, interaction: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ehr_fhir_request_duration_seconds_count",
        {"method": method, "interaction": interaction, "outcome": outcome},
    )
    return value or 0.0


async def test_metrics_are_labelled_by_interaction_and_outcome(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient
) -> None:
    hapi.get(f"{TENANT_BASE}/Patient/p-1").respond(json=make_patient(id="p-1"))
    hapi.get(f"{TENANT_BASE}/Patient/missing").respond(404)
    hapi.get(f"{TENANT_BASE}/Patient/down").mock(side_effect=httpx.ConnectError("refused"))
    hapi.get(f"{TENANT_BASE}/Patient").respond(json=make_bundle())
    before = {
        key: _observations(*key)
        for key in [
            ("GET", "read", "2xx"),
            ("GET", "read", "4xx"),
            ("GET", "read", "connect_error"),
            ("GET", "search", "2xx"),
        ]
    }
    await tenant_fhir.read("Patient", "p-1")
    with pytest.raises(FhirResourceNotFound):
        await tenant_fhir.read("Patient", "missing")
    with pytest.raises(FhirUnavailable):
        await tenant_fhir.read("Patient", "down")
    await tenant_fhir.search("Patient", {"name": "x"})
    await tenant_fhir.resources("Patient").search(name="x").fetch()
    after = {key: _observations(*key) for key in before}
    assert after[("GET", "read", "2xx")] - before[("GET", "read", "2xx")] == 1
    assert after[("GET", "read", "4xx")] - before[("GET", "read", "4xx")] == 1
    assert after[("GET", "read", "connect_error")] - before[("GET", "read", "connect_error")] == 1
    assert after[("GET", "search", "2xx")] - before[("GET", "search", "2xx")] == 2


def test_metric_labels_never_carry_ids() -> None:
    for metric in REGISTRY.collect():
        if metric.name != "ehr_fhir_request_duration_seconds":
            continue
        for sample in metric.samples:
            assert set(sample.labels) <= {"method", "interaction", "outcome", "le"}
            assert "p-1" not in sample.labels.values()


class _RecordingLogger:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def _record(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self.events.append((level, event, fields))

        return log

    def __getattr__(self, level: str) -> Any:
        return self._record(level)


async def test_failures_are_logged_without_urls_or_bodies(
    hapi: respx.MockRouter, tenant_fhir: TenantFhirClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _RecordingLogger()
    monkeypatch.setattr(transport_module, "logger", recorder)
    hapi.get(f"{TENANT_BASE}/Patient").respond(
        500, json=make_operation_outcome("HAPI-0389: SQL error near 'Testperson'")
    )
    hapi.get(f"{TENANT_BASE}/Patient/p-9").respond(404)
    hapi.get(f"{TENANT_BASE}/Patient/p-8").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(FhirUpstreamError):
        await tenant_fhir.search("Patient", {"name": "Testperson"})
    with pytest.raises(FhirResourceNotFound):
        await tenant_fhir.read("Patient", "p-9")
    with pytest.raises(FhirUnavailable):
        await tenant_fhir.read("Patient", "p-8")

    (level_500, event, fields_500), (level_404, _, fields_404), (level_conn, _, fields_conn) = (
        recorder.events
    )
    assert event == "fhir.request.failed"
    assert (level_500, level_404, level_conn) == ("warning", "debug", "warning")
    assert fields_500["tenant"] == "DEFAULT"
    assert fields_500["interaction"] == "search"
    assert fields_500["upstream_status"] == 500
    assert fields_500["error_code"] == "fhir_upstream_error"
    assert fields_500["hapi_code"] == "HAPI-0389"
    assert fields_404["resource_id"] == "p-9"
    assert fields_conn["exc_type"] == "ConnectError"
    assert fields_conn["outcome"] == "connect_error"
    logged = json.dumps([e[2] for e in recorder.events])
    assert "Testperson" not in logged
    assert "http" not in logged
