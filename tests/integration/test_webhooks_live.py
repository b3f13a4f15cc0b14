"""Outbound webhooks against the real PostgreSQL, a real ``ehr worker`` and loopback receivers
(ADR 0026). Private targets are allowed here (``EHR_WEBHOOKS__ALLOW_PRIVATE_TARGETS``) so the
receivers can listen on 127.0.0.1; every request they get has its signature verified.

- an endpoint registered through ``/api/webhooks`` (secret shown once) receives a matching
  event, signed, with ``webhook-id`` = the event id; a non-matching type is not sent;
- a receiver failing twice (503) then succeeding: three attempts, the same ``webhook-id``;
- a receiver that hangs: the attempt times out and is retried later, while another tenant's
  endpoint gets its delivery meanwhile;
- replay through the API: a new delivery, the same ``webhook-id``, received again;
- a 410 is not retried; a receiver failing on every attempt gets its endpoint disabled (three
  failures in a row here) and the delivery ends ``failed``;
- the attempt connects to the checked address, whatever the name would resolve to now (DNS
  rebinding), with the URL's host in ``Host``;
- the whole path in the worker: an event emitted to the outbox, relayed to Redis, consumed by
  ``webhooks.HANDLERS`` (the worker's ``WORKER_HANDLERS``), delivered by its job;
- without the setting, registering a loopback URL is refused (422).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from support.database import Sessions, open_sessions
from support.in_process import serve
from support.ports import free_port
from support.principals import acting_as
from support.throwaway_schema import admin_of, tenant_rows, throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import Tenant, WebhookDelivery
from ehr.entrypoints.api import create_app
from ehr.platform import events, webhooks
from ehr.platform.webhooks.delivery import Outcome, post_signed
from ehr.platform.webhooks.dependencies import get_webhooks_settings
from ehr.platform.webhooks.targets import ResolvedTarget

pytestmark = pytest.mark.integration

# How long a test waits for a state it expects (a wait, never an assertion on time).
PATIENCE_SECONDS = 60.0
ALLOWED = webhooks.WebhooksSettings(allow_private_targets=True, allow_http=True)


@dataclass
class Receiver:
    """A loopback HTTP receiver: answers ``statuses`` in turn (then 200), or hangs."""

    statuses: list[int] = field(default_factory=list)
    hang: bool = False
    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(
            {
                "host": headers.get("host"),
                "id": headers.get("webhook-id"),
                "valid": webhooks.verify(self.secret, headers, body),
                "body": body,
            }
        )
        if self.hang:
            await asyncio.Event().wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, headers={"Retry-After": "0"} if status >= 500 else {})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "webhooks_live") as local:
        yield local


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def tenants(sessions: Sessions) -> list[Tenant]:
    return await tenant_rows(sessions, "hooks", 1_950_000_000)


@pytest.fixture(scope="module")
async def http(schema_settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(schema_settings)
    app.dependency_overrides[get_webhooks_settings] = lambda: ALLOWED
    async with serve(app) as client:
        yield app, client


@contextmanager
def worker(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """``ehr worker`` on the test's schema: private targets allowed, short timeouts, quick
    retries."""
    env = {
        **os.environ,
        "EHR_DB__URL": settings.db.url.get_secret_value(),
        "EHR_DB__APP_SCHEMA": settings.db.app_schema,
        "EHR_JOBS__CONCURRENCY": "4",
        "EHR_JOBS__HEALTH_PORT": "0",
        "EHR_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
        "EHR_WEBHOOKS__ALLOW_HTTP": "true",
        "EHR_WEBHOOKS__CONNECT_TIMEOUT_SECONDS": "1",
        "EHR_WEBHOOKS__READ_TIMEOUT_SECONDS": "1",
        "EHR_WEBHOOKS__TOTAL_TIMEOUT_SECONDS": "2",
        "EHR_WEBHOOKS__RETRY_BASE_SECONDS": "0.2",
        "EHR_WEBHOOKS__RETRY_MIN_SECONDS": "0.1",
        "EHR_WEBHOOKS__RETRY_MAX_SECONDS": "1",
        "EHR_WEBHOOKS__MAX_ATTEMPTS": "5",
        "EHR_WEBHOOKS__DISABLE_AFTER_FAILURES": "3",
        "EHR_WEBHOOKS__DISABLE_AFTER_SECONDS": "0",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "ehr.entrypoints.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def register(
    http: tuple[Any, httpx.AsyncClient], tenant: Tenant, receiver: Receiver, types: list[str]
) -> uuid.UUID:
    app, client = http
    with acting_as(app, admin_of(tenant)):
        answer = await client.post(
            "/api/webhooks", json={"url": receiver.url, "event_types": types}
        )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert document["secret"].startswith("whsec_")
    receiver.secret = document["secret"]
    return uuid.UUID(document["id"])


async def emit(sessions: Sessions, tenant: Tenant, event_type: str) -> events.Event:
    event = events.new_event(
        event_type, tenant=tenant.slug, subject="Patient/p1", resource="Observation/o1"
    )
    async with sessions() as session, session.begin():
        await webhooks.HANDLERS[0].handle(session, event)
    return event


async def delivery_of(sessions: Sessions, endpoint: uuid.UUID, event_id: uuid.UUID) -> Any:
    async with sessions() as session:
        return await session.scalar(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint, WebhookDelivery.event_id == event_id)
            .order_by(WebhookDelivery.created_at.desc())
        )


async def wait_for(sessions: Sessions, endpoint: uuid.UUID, event_id: uuid.UUID, test: Any) -> Any:
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while True:
        found = await delivery_of(sessions, endpoint, event_id)
        if found is not None and test(found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"delivery stayed {found and found.status}")
        await asyncio.sleep(0.1)


async def test_webhooks_end_to_end(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant_a, tenant_b = tenants
    ok, flaky, hanging = Receiver(), Receiver(statuses=[503, 503]), Receiver(hang=True)
    for receiver in (ok, flaky, hanging):
        await receiver.start()
    try:
        ok_id = await register(http, tenant_a, ok, ["result.*"])
        flaky_id = await register(http, tenant_a, flaky, ["order.signed"])
        hang_id = await register(http, tenant_b, hanging, ["*"])
        with worker(schema_settings):
            # The hanging target first: the other tenant's delivery is not held up by it.
            stuck = await emit(sessions, tenant_b, "result.critical")
            critical = await emit(sessions, tenant_a, "result.critical")
            signed = await emit(sessions, tenant_a, "order.signed")

            done = await wait_for(sessions, ok_id, critical.id, lambda d: d.status != "pending")
            assert (done.status, done.attempts, done.last_status_code) == ("succeeded", 1, 200)
            assert [r["id"] for r in ok.received] == [str(critical.id)]
            assert all(r["valid"] for r in ok.received)
            assert b'"type":"result.critical"' in ok.received[0]["body"]
            assert b"Patient/p1" in ok.received[0]["body"]

            retried = await wait_for(
                sessions, flaky_id, signed.id, lambda d: d.status in ("succeeded", "failed")
            )
            assert (retried.status, retried.attempts) == ("succeeded", 3)
            assert [r["id"] for r in flaky.received] == [str(signed.id)] * 3
            assert all(r["valid"] for r in flaky.received)
            # order.signed is not a result.*: the first endpoint never saw it.
            assert await delivery_of(sessions, ok_id, signed.id) is None

            timed_out = await wait_for(sessions, hang_id, stuck.id, lambda d: d.attempts >= 1)
            assert timed_out.last_error == "timeout"
            assert timed_out.status in ("retrying", "failed")
            assert all(r["valid"] for r in hanging.received)

            app, client = http
            with acting_as(app, admin_of(tenant_a)):
                replay = await client.post(f"/api/webhooks/{ok_id}/deliveries/{done.id}/replay")
                assert replay.status_code == 202, replay.text
                replay_id = uuid.UUID(replay.json()["id"])
                log = await client.get(f"/api/webhooks/{ok_id}/deliveries")
                assert log.status_code == 200
                assert {d["id"] for d in log.json()["items"]} >= {str(done.id), str(replay_id)}
            with acting_as(app, admin_of(tenant_b)):
                assert (await client.get(f"/api/webhooks/{ok_id}/deliveries")).status_code == 404
            again = await wait_for(
                sessions, ok_id, critical.id, lambda d: d.id == replay_id and d.status != "pending"
            )
            assert (again.status, again.replay_of) == ("succeeded", done.id)
            assert [r["id"] for r in ok.received] == [str(critical.id)] * 2
            assert all(r["valid"] for r in ok.received)
    finally:
        for receiver in (ok, flaky, hanging):
            await receiver.stop()


async def test_a_4xx_is_not_retried_and_a_failing_endpoint_is_disabled(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant_a, tenant_b = tenants
    gone, broken = Receiver(statuses=[410]), Receiver(statuses=[500] * 10)
    for receiver in (gone, broken):
        await receiver.start()
    try:
        gone_id = await register(http, tenant_a, gone, ["patient.updated"])
        broken_id = await register(http, tenant_b, broken, ["patient.updated"])
        with worker(schema_settings):
            first = await emit(sessions, tenant_a, "patient.updated")
            second = await emit(sessions, tenant_b, "patient.updated")
            refused = await wait_for(sessions, gone_id, first.id, lambda d: d.status == "failed")
            assert (refused.attempts, refused.last_error) == (1, "http_410")
            failed = await wait_for(sessions, broken_id, second.id, lambda d: d.status == "failed")
            assert failed.attempts == 3
            assert failed.last_error == "http_500; endpoint_disabled"
            assert len(broken.received) == 3
            assert all(r["valid"] for r in (*gone.received, *broken.received))
        app, client = http
        with acting_as(app, admin_of(tenant_b)):
            endpoint = (await client.get(f"/api/webhooks/{broken_id}")).json()
            assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "failing")
            blocked = await client.post(f"/api/webhooks/{broken_id}/deliveries/{failed.id}/replay")
            assert blocked.status_code == 409
            enabled = (await client.post(f"/api/webhooks/{broken_id}/enable")).json()
            assert (enabled["enabled"], enabled["consecutive_failures"]) == (True, 0)
    finally:
        for receiver in (gone, broken):
            await receiver.stop()


async def test_a_loopback_target_is_refused_without_the_setting(
    schema_settings: Settings, tenants: list[Tenant]
) -> None:
    app = create_app(schema_settings)
    app.dependency_overrides[get_webhooks_settings] = lambda: webhooks.WebhooksSettings(
        allow_private_targets=False, allow_http=True
    )
    async with serve(app) as client:
        with acting_as(app, admin_of(tenants[0])):
            answer = await client.post(
                "/api/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
            )
    assert answer.status_code == 422
    assert answer.json()["code"] == "webhook_target_refused"


async def test_an_attempt_connects_to_the_checked_address_not_a_new_lookup() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        receiver.secret = webhooks.generate_secret()
        # A name that resolves nowhere: only the pinned address can reach the receiver.
        url = f"http://hooks.rebind.invalid:{receiver.port}/hook"
        target = ResolvedTarget(
            scheme="http", host="hooks.rebind.invalid", port=receiver.port, address="127.0.0.1"
        )
        result = await post_signed(
            target, url, secret=receiver.secret, message_id="m1", body=b"{}", settings=ALLOWED
        )
        assert (result.outcome, result.status_code) == (Outcome.SUCCEEDED, 200)
        assert receiver.received[0]["host"] == f"hooks.rebind.invalid:{receiver.port}"
        assert receiver.received[0]["valid"]
    finally:
        await receiver.stop()


async def test_an_emitted_event_is_relayed_consumed_and_delivered(
    schema_settings: Settings,
    sessions: Sessions,
    tenants: list[Tenant],
    http: tuple[Any, httpx.AsyncClient],
) -> None:
    tenant_a = tenants[0]
    receiver = Receiver()
    await receiver.start()
    try:
        endpoint = await register(http, tenant_a, receiver, ["order.*"])
        event = events.new_event(
            "order.revoked", tenant=tenant_a.slug, resource="ServiceRequest/s1"
        )
        async with sessions() as session, session.begin():
            events.emit(session, event)
        # The worker's relay moves the outbox row to the stream; its consumer of
        # webhooks.HANDLERS (WORKER_HANDLERS) turns it into a delivery; its job sends it.
        with worker(schema_settings):
            done = await wait_for(sessions, endpoint, event.id, lambda d: d.status != "pending")
        assert done.status == "succeeded"
        assert [r["id"] for r in receiver.received] == [str(event.id)]
        assert receiver.received[0]["valid"]
    finally:
        await receiver.stop()
