"""The FHIR gateway against the real HAPI, through the app (``/fhir/...``).

Tokens are real (the acceptance world's helpers); the SMART policy is replaced by an allow-all
stub (``allow_all``): these tests are about pass-through, rewriting, isolation, caps and errors.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from support.tenant_world import World, make_tenant, remove_tenants

from ehr.core.config import FhirSettings, GatewaySettings, Settings
from ehr.core.db.models import AuditRecord
from ehr.platform.auth.permissions import Role
from ehr.platform.tenancy.partitions import delete_partition, list_partitions

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("allow_all")]

FHIR_JSON = "application/fhir+json"
# The devstack sets the public base to its API port (EHR_STACK_API_PORT; 8000 by default).
PUBLIC = f"{Settings().gateway.public_base_url.rstrip('/')}/fhir"
ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def hapi_hostport(settings: Settings) -> str:
    return urlsplit(settings.fhir.base_url).netloc


def auth(gw: World, label: str = "ga", role: Role = Role.PHYSICIAN) -> dict[str, str]:
    return gw.tenants[label].auth(role)


def fhir_headers(gw: World, label: str = "ga", **extra: str) -> dict[str, str]:
    return {**auth(gw, label), "Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **extra}


def no_hapi(response: httpx.Response, settings: Settings) -> None:
    hostport = hapi_hostport(settings)
    assert hostport not in response.text
    for name, value in response.headers.items():
        assert hostport not in value, name


def patient(gw: World, family: str, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": "urn:ehr:test", "code": gw.run}]},
        "name": [{"family": family, "given": ["Gateway"]}],
        "gender": "unknown",
        **fields,
    }


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


async def create(api: httpx.AsyncClient, gw: World, resource: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(
        f"/fhir/{resource['resourceType']}",
        content=json.dumps(resource),
        headers=fhir_headers(gw, Prefer="return=representation"),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_crud_with_versioned_update(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    family = f"Zzgw{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/fhir/Patient",
        content=json.dumps(patient(gw, family)),
        headers=fhir_headers(gw, Prefer="return=representation"),
    )
    assert response.status_code == 201, response.text
    no_hapi(response, settings)
    created = response.json()
    pid = created["id"]
    assert response.headers["location"].startswith(f"{PUBLIC}/Patient/{pid}/_history/1")
    assert response.headers["etag"] == 'W/"1"'

    read = await api.get(f"/fhir/Patient/{pid}", headers=auth(gw))
    assert read.status_code == 200
    assert read.json()["name"][0]["family"] == family
    assert read.headers["content-type"].startswith(FHIR_JSON)
    no_hapi(read, settings)

    created["gender"] = "female"
    updated = await api.put(
        f"/fhir/Patient/{pid}",
        content=json.dumps(created),
        headers=fhir_headers(gw, **{"If-Match": 'W/"1"'}),
    )
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'

    stale = await api.put(
        f"/fhir/Patient/{pid}",
        content=json.dumps(created),
        headers=fhir_headers(gw, **{"If-Match": 'W/"1"'}),
    )
    assert stale.status_code in {409, 412}, stale.text
    assert stale.json()["resourceType"] == "OperationOutcome"

    vread = await api.get(f"/fhir/Patient/{pid}/_history/1", headers=auth(gw))
    assert vread.status_code == 200
    assert vread.json()["gender"] == "unknown"

    history = await api.get(f"/fhir/Patient/{pid}/_history", headers=auth(gw))
    assert history.status_code == 200
    assert history.json()["total"] == 2
    no_hapi(history, settings)

    type_history = await api.get(
        "/fhir/Patient/_history", params={"_count": "1000"}, headers=auth(gw)
    )
    assert type_history.status_code == 200
    assert len(type_history.json().get("entry", [])) <= settings.gateway.max_history_count

    deleted = await api.delete(f"/fhir/Patient/{pid}", headers=auth(gw))
    assert deleted.status_code in {200, 204}
    gone = await api.get(f"/fhir/Patient/{pid}", headers=auth(gw))
    outcome(gone, 410)


async def test_conditional_create_twice_makes_one(api: httpx.AsyncClient, gw: World) -> None:
    mrn = f"gw-{uuid.uuid4().hex}"
    body = patient(gw, "Zzgwcond", identifier=[{"system": "urn:ehr:test:gw", "value": mrn}])
    headers = fhir_headers(gw, **{"If-None-Exist": f"identifier=urn:ehr:test:gw|{mrn}"})
    first = await api.post("/fhir/Patient", content=json.dumps(body), headers=headers)
    second = await api.post("/fhir/Patient", content=json.dumps(body), headers=headers)
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    found = await api.get(
        "/fhir/Patient", params={"identifier": f"urn:ehr:test:gw|{mrn}"}, headers=auth(gw)
    )
    assert found.json()["total"] == 1

    # conditional update and delete
    body["gender"] = "male"
    updated = await api.put(
        "/fhir/Patient",
        params={"identifier": f"urn:ehr:test:gw|{mrn}"},
        content=json.dumps(body),
        headers=fhir_headers(gw),
    )
    assert updated.status_code == 200, updated.text
    deleted = await api.delete(
        "/fhir/Patient", params={"identifier": f"urn:ehr:test:gw|{mrn}"}, headers=auth(gw)
    )
    assert deleted.status_code in {200, 204}, deleted.text


async def test_json_patch_and_fhirpath_patch(api: httpx.AsyncClient, gw: World) -> None:
    created = await create(api, gw, patient(gw, "Zzgwpatch"))
    pid = created["id"]
    json_patch = await api.patch(
        f"/fhir/Patient/{pid}",
        content=json.dumps([{"op": "replace", "path": "/gender", "value": "female"}]),
        headers={**auth(gw), "Content-Type": "application/json-patch+json"},
    )
    assert json_patch.status_code == 200, json_patch.text
    fhirpath_patch = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "Patient"},
                    {"name": "name", "valueString": "birthDate"},
                    {"name": "value", "valueDate": "1980-02-03"},
                ],
            }
        ],
    }
    second = await api.patch(
        f"/fhir/Patient/{pid}", content=json.dumps(fhirpath_patch), headers=fhir_headers(gw)
    )
    assert second.status_code == 200, second.text
    read = (await api.get(f"/fhir/Patient/{pid}", headers=auth(gw))).json()
    assert read["gender"] == "female"
    assert read["birthDate"] == "1980-02-03"


async def test_transaction_with_urn_uuid_references(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": patient(gw, "Zzgwtx"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "meta": {"tag": [{"system": "urn:ehr:test", "code": gw.run}]},
                    "status": "final",
                    "code": {"text": "gateway test"},
                    "subject": {"reference": urn},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = await api.post("/fhir", content=json.dumps(bundle), headers=fhir_headers(gw))
    assert response.status_code == 200, response.text
    no_hapi(response, settings)
    result = response.json()
    assert result["type"] == "transaction-response"
    patient_location = result["entry"][0]["response"]["location"]
    pid = patient_location.split("/")[1]
    observations = await api.get(
        "/fhir/Observation", params={"subject": f"Patient/{pid}"}, headers=auth(gw)
    )
    assert observations.json()["total"] == 1

    everything = await api.get(f"/fhir/Patient/{pid}/$everything", headers=auth(gw))
    assert everything.status_code == 200, everything.text
    types = {e["resource"]["resourceType"] for e in everything.json()["entry"]}
    assert types == {"Patient", "Observation"}
    no_hapi(everything, settings)


async def test_batch_bundle(api: httpx.AsyncClient, gw: World) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{gw.tenants['ga'].patient['id']}"}}
        ],
    }
    response = await api.post("/fhir", content=json.dumps(bundle), headers=fhir_headers(gw))
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "batch-response"


async def test_search_pages_never_show_hapi_and_stay_in_their_tenant(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    family = f"Zzgwpage{uuid.uuid4().hex[:8]}"
    for _ in range(7):
        await create(api, gw, patient(gw, family))
    page = await api.get(
        "/fhir/Patient", params={"family": family, "_count": "2"}, headers=auth(gw)
    )
    seen: list[str] = []
    next_urls: list[str] = []
    for _ in range(3):
        assert page.status_code == 200, page.text
        no_hapi(page, settings)
        bundle = page.json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        for link in bundle["link"]:
            assert link["url"].startswith(PUBLIC), link
        for entry in bundle["entry"]:
            assert entry["fullUrl"].startswith(f"{PUBLIC}/Patient/")
        next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        assert "_getpages=" in next_url
        next_urls.append(next_url)
        parts = urlsplit(next_url)
        page = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw))
    assert len(set(seen)) == 6

    # POST _search answers the same way
    posted = await api.post(
        "/fhir/Patient/_search",
        content=f"family={family}&_count=3",
        headers={**auth(gw), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200, posted.text
    assert len(posted.json()["entry"]) == 3
    no_hapi(posted, settings)

    # another tenant cannot use these paging ids (hapi-fhir#7888)
    parts = urlsplit(next_urls[0])
    foreign = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw, "gb"))
    outcome(foreign, 404)
    # ... nor another user of the same tenant: pages belong to the principal that searched
    colleague = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw, "ga", Role.NURSE))
    outcome(colleague, 404)
    made_up = await api.get("/fhir", params={"_getpages": str(uuid.uuid4())}, headers=auth(gw))
    outcome(made_up, 404)


async def test_tenant_qualified_base(api: httpx.AsyncClient, gw: World, settings: Settings) -> None:
    """``/fhir/{tenant}`` works like ``/fhir`` for that tenant; any other tenant name is 404."""
    slug = gw.tenants["ga"].slug
    base = f"{PUBLIC}/{slug}"
    family = f"Zzgwbase{uuid.uuid4().hex[:8]}"
    created = [await create(api, gw, patient(gw, family)) for _ in range(3)]
    read = await api.get(f"/fhir/{slug}/Patient/{created[0]['id']}", headers=auth(gw))
    assert read.status_code == 200, read.text
    assert read.json()["id"] == created[0]["id"]
    page = await api.get(
        f"/fhir/{slug}/Patient", params={"family": family, "_count": "2"}, headers=auth(gw)
    )
    assert page.status_code == 200, page.text
    no_hapi(page, settings)
    bundle = page.json()
    assert all(e["fullUrl"].startswith(f"{base}/Patient/") for e in bundle["entry"])
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert next_url.startswith(f"{base}?")
    parts = urlsplit(next_url)
    second = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw))
    assert second.status_code == 200, second.text
    assert len(second.json()["entry"]) == 1

    # another tenant's base, or no tenant at all: the same 404, nothing forwarded
    for other in (gw.tenants["gb"].slug, "no-such-tenant"):
        outcome(await api.get(f"/fhir/{other}/Patient", headers=auth(gw)), 404)
    # discovery under a tenant base is public; an unknown tenant is 404
    statement = await api.get(f"/fhir/{slug}/metadata")
    assert statement.status_code == 200
    assert statement.json()["implementation"]["url"] == base
    no_hapi(statement, settings)
    smart = await api.get(f"/fhir/{slug}/.well-known/smart-configuration")
    assert smart.status_code == 200
    assert smart.json()["issuer"] == PUBLIC  # the authorization server's, for every tenant base
    outcome(await api.get("/fhir/no-such-tenant/metadata"), 404)
    outcome(await api.get("/fhir/no-such-tenant/.well-known/smart-configuration"), 404)


async def test_count_is_capped(api: httpx.AsyncClient, gw: World, settings: Settings) -> None:
    response = await api.get(
        "/fhir/Patient", params={"_count": "100000", "_total": "accurate"}, headers=auth(gw)
    )
    assert response.status_code == 200
    bundle = response.json()
    for link in bundle["link"]:
        if link["relation"] == "self":
            assert f"_count={settings.gateway.max_count}" in link["url"]
            assert "_total=accurate" not in link["url"]


async def test_metadata_is_ours(api: httpx.AsyncClient, settings: Settings) -> None:
    response = await api.get("/fhir/metadata")
    assert response.status_code == 200
    no_hapi(response, settings)
    statement = response.json()
    assert statement["implementation"]["url"] == PUBLIC
    rest = statement["rest"][0]
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = rest["security"]["extension"][0]
    assert oauth["url"].endswith("/oauth-uris")
    allowed = set(settings.gateway.operations)
    names = [op["name"] for op in rest.get("operation", [])]
    for resource in rest["resource"]:
        names += [op["name"] for op in resource.get("operation", [])]
    assert names
    assert all((n if n.startswith("$") else f"${n}") in allowed for n in names)
    assert "expunge" not in response.text


async def test_smart_configuration(api: httpx.AsyncClient, settings: Settings) -> None:
    response = await api.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"] == PUBLIC  # OpenID Connect: id_tokens' iss is the FHIR base
    assert config["jwks_uri"].endswith("/.well-known/jwks.json")
    assert "permission-v2" in config["capabilities"]


async def _poll_until_done(api: httpx.AsyncClient, gw: World, poll_path: str) -> httpx.Response:
    """HAPI starts a queued job on its next maintenance pass (about a minute): 3 min at most."""
    async with asyncio.timeout(180):
        while True:
            status = await api.get(poll_path, headers=auth(gw))
            if status.status_code != 202:
                return status
            await asyncio.sleep(2)


async def test_bulk_export_completes_in_its_partition(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    """Kick-off, poll to completion and download: the files hold this tenant's data only."""
    mine = await create(api, gw, patient(gw, "Exported"))
    theirs = await api.post(
        "/fhir/Patient",
        content=json.dumps(patient(gw, "NotExported")),
        headers={**fhir_headers(gw, "gb"), "Prefer": "return=representation"},
    )
    assert theirs.status_code == 201, theirs.text
    kickoff = await api.get(
        "/fhir/Patient/$export",
        params={"_type": "Patient"},
        headers={**auth(gw), "Prefer": "respond-async", "Accept": FHIR_JSON},
    )
    assert kickoff.status_code == 202, kickoff.text
    parts = urlsplit(kickoff.headers["content-location"])
    done = await _poll_until_done(api, gw, f"{parts.path}?{parts.query}")
    assert done.status_code == 200, done.text
    no_hapi(done, settings)
    manifest = done.json()
    assert manifest["error"] == []
    outputs = manifest["output"]
    assert [item["type"] for item in outputs] == ["Patient"]
    ids: set[str] = set()
    for item in outputs:
        assert item["url"].startswith(f"{PUBLIC}/Binary/")
        path = urlsplit(item["url"]).path
        download = await api.get(path, headers={**auth(gw), "Accept": "application/fhir+ndjson"})
        assert download.status_code == 200, download.text
        no_hapi(download, settings)
        ids |= {json.loads(line)["id"] for line in download.text.splitlines() if line.strip()}
        # another tenant cannot fetch this tenant's export file
        assert (await api.get(path, headers=auth(gw, "gb"))).status_code == 404
    assert mine["id"] in ids
    assert theirs.json()["id"] not in ids


async def test_bulk_export_kickoff_and_poll(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    kickoff = await api.get(
        "/fhir/Patient/$export",
        params={"_type": "Patient"},
        headers={**auth(gw), "Prefer": "respond-async", "Accept": FHIR_JSON},
    )
    assert kickoff.status_code == 202, kickoff.text
    no_hapi(kickoff, settings)
    poll_url = kickoff.headers["content-location"]
    assert poll_url.startswith(f"{PUBLIC}/$export-poll-status?")
    parts = urlsplit(poll_url)
    status = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw))
    assert status.status_code in {200, 202}, status.text
    no_hapi(status, settings)
    # the job is the tenant's: another tenant cannot poll (or download) it
    foreign = await api.get(f"{parts.path}?{parts.query}", headers=auth(gw, "gb"))
    outcome(foreign, 404)
    unknown = await api.get(
        "/fhir/$export-poll-status", params={"_jobId": str(uuid.uuid4())}, headers=auth(gw)
    )
    outcome(unknown, 404)


async def test_large_body_streams_through(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    data = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()
    binary = {"resourceType": "Binary", "contentType": "application/octet-stream", "data": data}
    body = json.dumps(binary).encode()
    assert len(body) > settings.gateway.validate_json_max_bytes

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    created = await api.post(
        "/fhir/Binary",
        content=chunks(),
        headers={**auth(gw), "Content-Type": FHIR_JSON, "Prefer": "return=minimal"},
    )
    assert created.status_code == 201, created.text
    no_hapi(created, settings)
    binary_id = created.headers["location"].split("/Binary/")[1].split("/")[0]
    read = await api.get(f"/fhir/Binary/{binary_id}", headers={**auth(gw), "Accept": FHIR_JSON})
    assert read.status_code == 200
    assert read.json()["data"] == data
    deleted = await api.delete(f"/fhir/Binary/{binary_id}", headers=auth(gw))
    assert deleted.status_code in {200, 204}


async def _records(gw: World, *request_ids: str) -> list[AuditRecord]:
    async with gw.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.request_id.in_(request_ids))
        )
        return list(rows.all())


async def test_each_interaction_is_audited_once(api: httpx.AsyncClient, gw: World) -> None:
    tenant = gw.tenants["ga"]
    pid = tenant.patient["id"]
    request_ids = {}
    for kind, path, status in (
        ("read", f"/fhir/Patient/{pid}", 200),
        ("search", "/fhir/Patient", 200),
        ("missing", f"/fhir/Patient/missing-{uuid.uuid4().hex[:8]}", 404),
    ):
        request_id = f"gw-{uuid.uuid4().hex[:10]}"
        request_ids[kind] = request_id
        response = await api.get(path, headers={**auth(gw), "X-Request-ID": request_id})
        assert response.status_code == status
        # a small answer is sent whole, with its length
        assert response.headers["content-length"] == str(len(response.content))
    rows = await _records(gw, *request_ids.values())
    # one record per interaction: the search's returned patients are in its own record
    assert sorted(row.request_id for row in rows) == sorted(request_ids.values())
    by_request = {row.request_id: row for row in rows}
    read = by_request[request_ids["read"]]
    assert (read.action, read.resource_type, read.resource_id) == ("fhir:read", "Patient", pid)
    assert read.patient_id == pid
    assert (read.outcome, read.http_status, read.tenant) == ("success", 200, tenant.slug)
    search = by_request[request_ids["search"]]
    assert (search.action, search.resource_type, search.outcome) == (
        "fhir:search",
        "Patient",
        "success",
    )
    assert search.details is not None
    assert (search.details["method"], search.details["params"]) == ("GET", [])
    assert pid in search.details["patients"]
    assert search.details["truncated"] is False
    # HAPI's status is the record's: a read of nothing is not a "success 200"
    missing = by_request[request_ids["missing"]]
    assert (missing.action, missing.outcome, missing.http_status) == ("fhir:read", "failure", 404)


async def test_a_streamed_answer_records_its_patients_at_its_end(
    make_client: ClientFactory, gw: World
) -> None:
    pid = gw.tenants["ga"].patient["id"]
    request_id = f"gw-{uuid.uuid4().hex[:10]}"
    # Nothing is buffered: every answer streams (what a large search page does).
    async with make_client(gateway=GatewaySettings(buffer_answer_bytes=0)) as client:
        response = await client.get(
            "/fhir/Patient", headers={**auth(gw), "X-Request-ID": request_id}
        )
    assert response.status_code == 200
    assert "content-length" not in response.headers
    assert pid in response.text
    rows = {row.action: row for row in await _records(gw, request_id)}
    # the access, written before the first byte; the patients, before the last one
    assert set(rows) == {"fhir:search", "fhir:search.result"}
    assert "patients" not in (rows["fhir:search"].details or {})
    assert pid in (rows["fhir:search.result"].details or {})["patients"]


async def test_bad_input(api: httpx.AsyncClient, gw: World) -> None:
    wrong_type = await api.post(
        "/fhir/Patient", content="<x/>", headers={**auth(gw), "Content-Type": "text/html"}
    )
    outcome(wrong_type, 415)
    malformed = await api.post("/fhir/Patient", content="{not json", headers=fhir_headers(gw))
    outcome(malformed, 400)
    not_a_bundle = await api.post("/fhir", content="{}", headers=fhir_headers(gw))
    outcome(not_a_bundle, 400)
    for path in ("/fhir/$expunge", "/fhir/Patient/$reindex", "/fhir/mcp/messages"):
        outcome(await api.post(path, content="{}", headers=fhir_headers(gw)), 403)
    outcome(await api.get("/fhir/$partition-management-list-partitions", headers=auth(gw)), 403)
    outcome(await api.get("/fhir/_history", headers=auth(gw)), 403)
    unauthenticated = await api.get("/fhir/Patient")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["resourceType"] == "OperationOutcome"


async def test_hapi_down_is_503(make_client: ClientFactory, gw: World) -> None:
    down = FhirSettings(base_url="http://127.0.0.1:9/fhir", connect_timeout_seconds=0.5)
    async with make_client(fhir=down) as client:
        response = await client.get("/fhir/Patient", headers=auth(gw))
    outcome(response, 503)


@pytest.fixture
async def slow_server() -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.close()


async def test_upstream_timeout_is_504(
    make_client: ClientFactory, gw: World, slow_server: str
) -> None:
    async with make_client(
        fhir=FhirSettings(base_url=slow_server),
        gateway=GatewaySettings(upstream_timeout_seconds=0.3),
    ) as client:
        response = await client.get("/fhir/Patient", headers=auth(gw))
    outcome(response, 504)


async def test_rate_limit_is_429(make_client: ClientFactory, gw: World) -> None:
    async with make_client(gateway=GatewaySettings(rate_limit_per_minute=2)) as client:
        statuses = []
        for _ in range(4):
            response = await client.get(
                "/fhir/Patient", params={"_count": "1"}, headers=auth(gw, "ga", Role.NURSE)
            )
            statuses.append(response.status_code)
    assert statuses[-1] == 429
    body = outcome(response, 429)
    assert body["issue"][0]["code"] == "throttled"
    assert int(response.headers["retry-after"]) >= 1


async def test_tenant_without_partition_is_404(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    label = "gz"
    tenant = await make_tenant(label, gw.run, gw.sessionmaker, gw.fhir, settings)
    try:
        tenant_fhir = gw.fhir.for_tenant(tenant.slug)
        for resource in (tenant.patient, tenant.restricted):
            await tenant_fhir.delete("Patient", resource["id"])
        partitions = {p.name: p.id for p in await list_partitions(gw.fhir)}
        await delete_partition(gw.fhir, partitions[tenant.slug])
        response = await api.get("/fhir/Patient", headers=tenant.auth(Role.PHYSICIAN))
        outcome(response, 404)
        no_hapi(response, settings)
    finally:
        await remove_tenants([tenant.slug], gw.fhir, gw.sessionmaker)


async def test_binary_bytes_pass_untouched(
    api: httpx.AsyncClient, gw: World, settings: Settings
) -> None:
    raw = b"%PDF-1.4 a document that quotes " + settings.fhir.base_url.encode() + b"/x " * 3
    binary = {
        "resourceType": "Binary",
        "contentType": "application/pdf",
        "data": base64.b64encode(raw).decode(),
    }
    created = await api.post("/fhir/Binary", content=json.dumps(binary), headers=fhir_headers(gw))
    assert created.status_code == 201, created.text
    binary_id = created.headers["location"].split("/Binary/")[1].split("/")[0]
    try:
        download = await api.get(
            f"/fhir/Binary/{binary_id}", headers={**auth(gw), "Accept": "application/pdf"}
        )
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("application/pdf")
        assert download.content == raw
    finally:
        await api.delete(f"/fhir/Binary/{binary_id}", headers=auth(gw))
