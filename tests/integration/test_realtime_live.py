"""The realtime channel against the real PostgreSQL and Redis of the stack (ADR 0025).

A real server (uvicorn on a free port, in this process) and real WebSocket clients
(``websockets``); real tenants, users, tokens and API keys (authentication as for any /api
request). Events are written to the stream with the relay's own writer
(``ehr.platform.events.outbox.xadd_events``: the entries exactly as the relay writes them) on a
stream of this run only (``ehr:events:test-realtime-<run>``, deleted at the end), so no worker's
consumers see them. One test goes the whole way instead: ``events.emit`` in a committed unit of
work → the relay (``events.run_relay``) → the socket, in a throwaway app schema of its own.

No assertion on time: a client waits (up to ``PATIENCE_SECONDS``) for a marker event it is
allowed to see, sent AFTER the events under test; a stream is delivered in order, so what it did
not receive before its marker, it will never receive.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from support.auth_live import issue_api_key
from support.database import Sessions, open_sessions
from support.live_server import PATIENCE_SECONDS, next_message, serve_app
from support.tenants import MakeTenant
from support.throwaway_schema import throwaway_schema
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.core.redis_store import create_redis
from ehr.entrypoints.api import create_app
from ehr.platform import events
from ehr.platform.auth.principal_cache import publish_principal_changes
from ehr.platform.auth.service import create_user, disable_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.events.outbox import xadd_events
from ehr.platform.realtime import (
    BAD_MESSAGE,
    FORBIDDEN,
    SLOW_CONSUMER,
    UNAUTHENTICATED,
    RealtimeSettings,
)
from ehr.platform.realtime.dependencies import Realtime, get_realtime, resources_of
from ehr.platform.realtime.hub import hub_for

pytestmark = pytest.mark.integration

PASSWORD = "Tall-Quiet-Harbour-Lamps-42"


@dataclass
class Server:
    base: str
    ws: str
    redis: Redis
    key: str

    async def emit(self, *envelopes: events.Event) -> list[str]:
        ids = await xadd_events(
            self.redis, self.key, (e.model_dump(mode="json") for e in envelopes), maxlen=10_000
        )
        return [i.decode() for i in ids]


@pytest.fixture(scope="module")
async def server(settings: Settings, run_id: str) -> AsyncIterator[Server]:
    """The app on a real socket; its realtime routes read this run's stream."""
    key = f"ehr:events:test-realtime-{run_id}"
    realtime_settings = RealtimeSettings(
        auth_timeout_seconds=1.0,
        heartbeat_seconds=1.0,
        revalidate_seconds=1.0,
        send_queue_max=20,
        send_timeout_seconds=2,
    )
    app: FastAPI = create_app(settings)

    async def test_stream(connection: HTTPConnection) -> Realtime:
        resources = resources_of(connection)
        hub = hub_for(resources.redis, key, block_ms=500, batch=500)
        return Realtime(resources, hub, realtime_settings)

    app.dependency_overrides[get_realtime] = test_stream
    redis = create_redis(settings)
    try:
        async with serve_app(app) as port:
            yield Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", redis, key)
    finally:
        await redis.delete(key)
        await redis.aclose()


@dataclass
class People:
    tenant: Tenant
    other: Tenant
    physician: str
    front_desk: str
    patient: str
    patient_id: str
    admin: str
    other_physician: str
    api_key: str


@pytest.fixture(scope="module")
async def people(db: Sessions, make_tenant: MakeTenant, settings: Settings) -> People:
    tenant, other = await make_tenant(), await make_tenant()
    patient_id = f"rt-{uuid.uuid4().hex[:8]}"
    tokens: dict[str, str] = {}
    async with db() as session, session.begin():
        for name, of, role in (
            ("physician", tenant, "physician"),
            ("front_desk", tenant, "front_desk"),
            ("patient", tenant, "patient"),
            ("admin", tenant, "admin"),
            ("other_physician", other, "physician"),
        ):
            user = await create_user(
                session,
                tenant_id=of.id,
                username=f"rt.{name}",
                password=PASSWORD,
                roles=[role],
                patient_id=patient_id if role == "patient" else None,
                settings=settings,
            )
            tokens[name] = await issue_access_token_for(session, settings, user)
    _, key = await issue_api_key(db, tenant.id, "realtime-test", permissions=["result:read"])
    return People(tenant=tenant, other=other, patient_id=patient_id, api_key=key, **tokens)


async def open_client(
    server: Server, token: str, seen: list[dict[str, Any]] | None = None, **subscribe: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connected and authenticated: the socket and its ``ready`` message (what came before it,
    the missed events, in ``seen``)."""
    socket = await connect(f"{server.ws}/api/events/ws")
    await socket.send(json.dumps({"type": "auth", "token": token, **subscribe}))
    ready = await next_message(socket, lambda m: m["type"] == "ready", seen)
    return socket, ready


def event_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages if m["type"] == "event"]


async def events_until(socket: ClientConnection, marker: str) -> list[dict[str, Any]]:
    """The events received up to and including the one of type ``marker``."""
    seen: list[dict[str, Any]] = []
    await next_message(
        socket, lambda m: m["type"] == "event" and m["event"]["type"] == marker, seen
    )
    return [m["event"] for m in seen if m["type"] == "event"]


async def close_code(socket: ClientConnection) -> tuple[int | None, str]:
    """Wait for the server to close ``socket``; its close code and reason."""
    try:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while True:
                await socket.recv()
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


def critical(tenant: Tenant, patient: str, n: int) -> events.Event:
    return events.new_event(
        "result.critical",
        tenant=tenant.slug,
        subject=f"Patient/{patient}",
        resource=f"DiagnosticReport/rt-{n}",
        data={"code": "http://loinc.org|2823-3", "critical": True},
    )


def marker(tenant: Tenant, patient: str) -> events.Event:
    """Seen by every user of the tenant (patient:read) and by the patient itself."""
    return events.new_event("patient.updated", tenant=tenant.slug, subject=f"Patient/{patient}")


async def test_a_critical_result_reaches_its_tenants_clinicians_and_patient_only(
    server: Server, people: People
) -> None:
    own, someone_else = people.patient_id, "rt-someone-else"
    physician, _ = await open_client(server, people.physician)
    front_desk, _ = await open_client(server, people.front_desk)
    patient, _ = await open_client(server, people.patient)
    other, _ = await open_client(server, people.other_physician)
    service, _ = await open_client(server, people.api_key, types=["result.*"])
    try:
        await server.emit(
            critical(people.tenant, own, 1),
            critical(people.tenant, someone_else, 2),
            critical(people.other, own, 3),
            marker(people.tenant, own),
            marker(people.other, own),
            events.new_event("result.critical", tenant=people.tenant.slug, subject=None),
        )
        got = await events_until(physician, "patient.updated")
        assert [(e["type"], e["resource"]) for e in got] == [
            ("result.critical", "DiagnosticReport/rt-1"),
            ("result.critical", "DiagnosticReport/rt-2"),
            ("patient.updated", None),
        ]
        assert {e["tenant"] for e in got} == {people.tenant.slug}
        # Front desk (patient:read only): the patient event, no result.
        assert [e["type"] for e in await events_until(front_desk, "patient.updated")] == [
            "patient.updated"
        ]
        # The patient: its own result only.
        mine = await events_until(patient, "patient.updated")
        assert [(e["type"], e["subject"]) for e in mine] == [
            ("result.critical", f"Patient/{own}"),
            ("patient.updated", f"Patient/{own}"),
        ]
        # The other tenant's physician: its own tenant's result, none of the first tenant's.
        theirs = await events_until(other, "patient.updated")
        assert [(e["tenant"], e["resource"]) for e in theirs] == [
            (people.other.slug, "DiagnosticReport/rt-3"),
            (people.other.slug, None),
        ]
        # An API key with result:read, subscribed to result.*: both results of its tenant, then
        # the one without a subject (the marker of a result-only subscriber).
        seen: list[dict[str, Any]] = []
        await next_message(
            service, lambda m: m["type"] == "event" and m["event"]["subject"] is None, seen
        )
        assert [m["event"]["resource"] for m in seen if m["type"] == "event"] == [
            "DiagnosticReport/rt-1",
            "DiagnosticReport/rt-2",
            None,
        ]
    finally:
        for socket in (physician, front_desk, patient, other, service):
            await socket.close()


async def test_a_reconnect_with_last_event_id_gets_what_it_missed_once(
    server: Server, people: People
) -> None:
    first, _ = await open_client(server, people.physician, types=["result.*"])
    (seen_id,) = await server.emit(critical(people.tenant, "rt-r", 10))
    received = await next_message(first, lambda m: m["type"] == "event")
    assert received["id"] == seen_id
    await first.close()
    missed = await server.emit(
        critical(people.tenant, "rt-r", 11), critical(people.tenant, "rt-r", 12)
    )
    seen: list[dict[str, Any]] = []
    again, ready = await open_client(
        server, people.physician, seen, types=["result.*"], last_event_id=seen_id
    )
    try:
        # The missed events, once each, before ``ready`` (caught up); then the live ones.
        assert event_ids(seen) == missed
        assert ready["position"] == missed[-1]
        (live_id,) = await server.emit(critical(people.tenant, "rt-r", 13))
        live: list[dict[str, Any]] = []
        await next_message(again, lambda m: m["type"] == "event" and m["id"] == live_id, live)
        assert event_ids(live) == [live_id]
    finally:
        await again.close()


async def test_missed_events_arrive_before_ready_in_order_without_duplicates(
    server: Server, people: People
) -> None:
    (start,) = await server.emit(marker(people.tenant, "rt-s"))
    missed = await server.emit(*(critical(people.tenant, "rt-s", 20 + n) for n in range(5)))
    socket = await connect(f"{server.ws}/api/events/ws")
    try:
        await socket.send(
            json.dumps({"type": "auth", "token": people.physician, "last_event_id": start})
        )
        seen: list[dict[str, Any]] = []
        await next_message(socket, lambda m: m["type"] == "ready", seen)
        (live_id,) = await server.emit(critical(people.tenant, "rt-s", 30))
        await next_message(socket, lambda m: m["type"] == "event" and m["id"] == live_id, seen)
        assert event_ids(seen) == [*missed, live_id]
    finally:
        await socket.close()


async def test_heartbeats_carry_a_resume_position(server: Server, people: People) -> None:
    socket, _ = await open_client(server, people.front_desk)
    try:
        beat = await next_message(socket, lambda m: m["type"] == "heartbeat")
        assert beat["position"].count("-") == 1
    finally:
        await socket.close()


async def test_refusals_close_with_their_codes(server: Server, people: People) -> None:
    silent = await connect(f"{server.ws}/api/events/ws")
    assert (await close_code(silent))[0] == UNAUTHENTICATED  # no credential within the deadline

    forged = await connect(f"{server.ws}/api/events/ws")
    await forged.send(json.dumps({"type": "auth", "token": "not-a-token"}))
    assert (await close_code(forged))[0] == UNAUTHENTICATED

    garbled = await connect(f"{server.ws}/api/events/ws")
    await garbled.send("hello")
    assert (await close_code(garbled))[0] == BAD_MESSAGE

    admin = await connect(f"{server.ws}/api/events/ws")
    await admin.send(json.dumps({"type": "auth", "token": people.admin}))
    assert (await close_code(admin))[0] == FORBIDDEN  # no event type may reach an administrator

    physician, _ = await open_client(server, people.physician)
    await physician.send(json.dumps({"type": "auth", "token": people.front_desk}))
    assert (await close_code(physician))[0] == FORBIDDEN  # a connection keeps its principal


async def test_a_disabled_account_is_disconnected_at_the_next_check(
    server: Server, people: People, db: Sessions, settings: Settings
) -> None:
    async with db() as session, session.begin():
        user = await create_user(
            session,
            tenant_id=people.tenant.id,
            username=f"rt.leaver.{uuid.uuid4().hex[:6]}",
            password=PASSWORD,
            roles=["nurse"],
            settings=settings,
        )
        token = await issue_access_token_for(session, settings, user)
    socket, _ = await open_client(server, token)
    async with db() as session, session.begin():
        await disable_user(session, user.id)
    assert await publish_principal_changes(server.redis)
    code, reason = await close_code(socket)
    assert code == UNAUTHENTICATED, reason


async def test_a_client_that_stops_reading_is_disconnected_as_a_slow_consumer(
    server: Server, people: People
) -> None:
    # The client's library reads at most one frame ahead; the kernel's buffers fill, then the
    # server's send blocks, then its bounded queue (20 here) overflows.
    socket = await connect(f"{server.ws}/api/events/ws", max_queue=1)
    await socket.send(json.dumps({"type": "auth", "token": people.physician}))
    await next_message(socket, lambda m: m["type"] == "ready")
    for batch in range(40):
        await server.emit(
            *(critical(people.tenant, "rt-slow", batch * 100 + n) for n in range(100))
        )
    code, reason = await close_code(socket)
    assert code == SLOW_CONSUMER, reason


async def test_the_sse_fallback_streams_the_same_events(server: Server, people: People) -> None:
    (start,) = await server.emit(marker(people.tenant, "rt-sse"))
    (missed,) = await server.emit(critical(people.tenant, "rt-sse", 40))
    headers = {"Authorization": f"Bearer {people.physician}", "Last-Event-ID": start}
    async with (
        httpx.AsyncClient(base_url=server.base, timeout=PATIENCE_SECONDS) as client,
        client.stream("GET", "/api/events/stream?types=result.*", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ids = [line[4:] async for line in _lines_until(response, f"id: {missed}") if line]
        assert ids[-1] == missed

    async with httpx.AsyncClient(base_url=server.base) as client:
        denied = await client.get(
            "/api/events/stream", headers={"Authorization": f"Bearer {people.admin}"}
        )
        assert denied.status_code == 403
        anonymous = await client.get("/api/events/stream")
        assert anonymous.status_code == 401


async def _lines_until(response: httpx.Response, last: str) -> AsyncIterator[str]:
    async with asyncio.timeout(PATIENCE_SECONDS):
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                yield line
            if line == last:
                return


# --- through the outbox and the relay ----------------------------------------------------------


async def test_an_event_emitted_in_a_transaction_reaches_the_socket_through_the_relay(
    settings: Settings,
) -> None:
    async with (
        throwaway_schema(settings, "realtime_live") as local,
        open_sessions(local) as sessions,
    ):
        async with sessions() as session, session.begin():
            tenant = Tenant(
                id=uuid.uuid4(),
                slug="rt-relay",
                partition_id=1_800_000_000,
                name="Realtime relay test",
                status="active",
            )
            session.add(tenant)
            await session.flush()
            user = await create_user(
                session,
                tenant_id=tenant.id,
                username="rt.relay.physician",
                password=PASSWORD,
                roles=["physician"],
                settings=local,
            )
            token = await issue_access_token_for(session, local, user)
        stop = asyncio.Event()
        # The app reads the relay's own stream of this schema (no override).
        async with serve_app(create_app(local)) as port:
            relay = asyncio.create_task(events.run_relay(local, stop=stop))
            try:
                url = f"ws://127.0.0.1:{port}"
                socket = await connect(f"{url}/api/events/ws")
                await socket.send(json.dumps({"type": "auth", "token": token}))
                await next_message(socket, lambda m: m["type"] == "ready")
                emitted = critical(tenant, "rt-relay-patient", 99)
                async with sessions() as session, session.begin():
                    events.emit(session, emitted)  # committed with the unit of work
                received = await next_message(socket, lambda m: m["type"] == "event")
                assert received["event"]["id"] == str(emitted.id)
                assert received["event"]["type"] == "result.critical"
                await socket.close()
            finally:
                stop.set()
                await relay
