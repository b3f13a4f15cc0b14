"""Both HTTP backends on real local sockets: keep-alive reuse, pool limit, failures, gzip.

``httpcore`` is httpx's own transport; ``aiohttp`` is ehr.fhir.aiohttp_transport. Whatever the
backend, callers see the same results and the same ehr.fhir.errors.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
import respx
from fhir_factories import make_patient
from local_hapi_stub import LocalHapiStub

from ehr.core.config import FhirSettings
from ehr.fhir import FhirClient, FhirTimeout, FhirUnavailable
from ehr.fhir.passthrough import FhirPassThrough
from ehr.fhir.transport import HttpBackend

BACKENDS: list[HttpBackend] = ["httpcore", "aiohttp"]


@pytest.fixture
async def stub() -> AsyncIterator[LocalHapiStub]:
    server = LocalHapiStub(patient=make_patient(id="p-1"))
    await server.start()
    yield server
    await server.stop()


def _client(base_url: str, backend: HttpBackend, **settings: float) -> FhirClient:
    return FhirClient(FhirSettings(base_url=base_url, **settings), http_backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sequential_requests_reuse_one_connection(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend) as fhir:
        tenant = fhir.for_tenant("DEFAULT")
        for _ in range(10):
            assert (await tenant.read("Patient", "p-1"))["id"] == "p-1"
        for _ in range(5):
            await tenant.resources("Patient").search(_id="p-1").fetch_raw()
    assert stub.connections == 1
    assert len(stub.requests) == 15


@pytest.mark.parametrize("backend", BACKENDS)
async def test_pool_is_bounded_by_max_connections(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend, max_connections=3) as fhir:
        tenant = fhir.for_tenant("DEFAULT")
        await asyncio.gather(*(tenant.read("Patient", "p-1") for _ in range(12)))
    assert len(stub.requests) == 12
    assert stub.max_open_connections <= 3


@pytest.mark.parametrize("backend", BACKENDS)
async def test_headers_and_body_reach_the_server(stub: LocalHapiStub, backend: HttpBackend) -> None:
    patient = make_patient()
    async with _client(stub.base_url, backend) as fhir:
        created = await fhir.for_tenant("DEFAULT").create(patient)
    assert created == patient  # the stub echoes the body
    request = stub.requests[-1]
    assert request.method == "POST"
    assert request.path == "/fhir/DEFAULT/Patient"
    assert request.headers["content-type"] == "application/fhir+json"
    assert request.headers["accept"] == "application/fhir+json"
    assert request.headers["prefer"] == "return=representation"
    assert json.loads(request.body) == patient


@pytest.mark.parametrize("backend", BACKENDS)
async def test_gzip_answers_are_decoded(stub: LocalHapiStub, backend: HttpBackend) -> None:
    async with _client(stub.base_url, backend) as fhir:
        patient = await fhir.for_tenant("DEFAULT").read("Patient", "gzip")
    assert patient["id"] == "p-1"
    assert "gzip" in stub.requests[-1].headers["accept-encoding"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_cookies_are_never_sent_back(stub: LocalHapiStub, backend: HttpBackend) -> None:
    async with _client(stub.base_url, backend) as fhir:
        await fhir.for_tenant("A").read("Patient", "cookie")
        await fhir.for_tenant("B").read("Patient", "p-1")
    assert "cookie" not in stub.requests[-1].headers


@pytest.mark.parametrize("backend", BACKENDS)
async def test_read_timeout_is_fhir_timeout(stub: LocalHapiStub, backend: HttpBackend) -> None:
    async with _client(stub.base_url, backend, timeout_seconds=0.2) as fhir:
        with pytest.raises(FhirTimeout):
            await fhir.for_tenant("DEFAULT").read("Patient", "slow")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_dropped_connection_is_unavailable(stub: LocalHapiStub, backend: HttpBackend) -> None:
    async with _client(stub.base_url, backend) as fhir:
        tenant = fhir.for_tenant("DEFAULT")
        with pytest.raises(FhirUnavailable):
            await tenant.read("Patient", "drop")
        # The pool recovers: the next request gets a fresh connection.
        assert (await tenant.read("Patient", "p-1"))["id"] == "p-1"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_refused_connection_is_unavailable(backend: HttpBackend) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _client(f"http://127.0.0.1:{port}/fhir", backend) as fhir:
        with pytest.raises(FhirUnavailable) as caught:
            await fhir.ping()
    assert caught.value.status_code == 503


@pytest.mark.parametrize("backend", BACKENDS)
async def test_streaming_through_the_shared_client(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend) as fhir:
        url = f"{stub.base_url}/DEFAULT/Patient/p-1"
        async with fhir.http.stream("GET", url) as response:
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
        assert json.loads(body)["id"] == "p-1"
        await fhir.for_tenant("DEFAULT").read("Patient", "p-1")
    assert stub.connections == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_respx_sees_both_backends(backend: HttpBackend) -> None:
    """respx.mock(using="httpx") intercepts at the client, whatever the transport."""
    base = "http://hapi.test/fhir"
    with respx.mock(using="httpx", assert_all_mocked=True) as router:
        route = router.get(f"{base}/DEFAULT/Patient/p-1").respond(json=make_patient(id="p-1"))
        async with _client(base, backend) as fhir:
            await fhir.for_tenant("DEFAULT").read("Patient", "p-1")
            await fhir.for_tenant("DEFAULT").resources("Patient").client.get("Patient", "p-1")
    assert route.call_count == 2


# --- the gateway's pass-through (ehr.fhir.passthrough): raw aiohttp or httpx, same answers ----


async def _pass_through(
    fhir: FhirClient, path: str, params: list[tuple[str, str]] | None = None
) -> tuple[int, str | None, bytes]:
    upstream = await FhirPassThrough(fhir).open(
        "GET", "DEFAULT", path, interaction="read", params=params or [], timeout=1.0
    )
    try:
        body = await upstream.read(1 << 20)
    finally:
        await upstream.aclose()
    return upstream.status_code, upstream.headers.get("content-type"), body


@pytest.mark.parametrize("backend", BACKENDS)
async def test_pass_through_sends_the_same_request(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend) as fhir:
        assert (fhir.raw_transport is not None) == (backend == "aiohttp")
        status, media, body = await _pass_through(
            fhir, "Patient/p-1", [("identifier", "urn:x|a b+c"), ("_count", "5")]
        )
    assert (status, media, json.loads(body)["id"]) == (200, "application/fhir+json", "p-1")
    sent = stub.requests[-1]
    # The query is encoded exactly as httpx encodes it, whichever backend sends it.
    assert sent.path == "/fhir/DEFAULT/Patient/p-1?identifier=urn%3Ax%7Ca+b%2Bc&_count=5"
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.headers["accept"] == "application/fhir+json"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_pass_through_decodes_a_compressed_answer(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend) as fhir:
        status, _, body = await _pass_through(fhir, "Patient/gzip")
    assert status == 200
    assert json.loads(body)["id"] == "p-1"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_pass_through_failures_are_fhir_errors(
    stub: LocalHapiStub, backend: HttpBackend
) -> None:
    async with _client(stub.base_url, backend) as fhir:
        with pytest.raises(FhirUnavailable):
            await _pass_through(fhir, "Patient/drop")
        with pytest.raises(FhirTimeout):
            await FhirPassThrough(fhir).open(
                "GET", "DEFAULT", "Patient/slow", interaction="read", timeout=0.2
            )
        # the pool recovers
        assert (await _pass_through(fhir, "Patient/p-1"))[0] == 200
