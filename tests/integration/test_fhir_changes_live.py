"""FHIR changes as events, the whole way through the real stack (ADR 0027).

HAPI (the stack's) holds each test tenant's subscriptions; its REST-hook deliveries go to the
stack's worker process (``ehr worker``, started by ``make test``), which writes the events to
the outbox of the stack's app schema; the worker's relay moves them to the schema's stream; an
API served here on a real socket reads that stream for its WebSocket clients. Nothing is faked:
the critical result is posted through ``/fhir`` like any FHIR client would.

No assertion on time: each client waits (up to ``PATIENCE_SECONDS``) for a marker event it is
allowed to see, written AFTER the event under test reached the stream; a stream is delivered in
order, so what a client did not receive before its marker, it never receives.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from support.database import Sessions
from support.live_server import PATIENCE_SECONDS, next_message, serve_app
from support.tenant_world import World, open_world
from websockets.asyncio.client import ClientConnection, connect

from ehr.core.config import Settings
from ehr.core.db.models import EventOutbox
from ehr.entrypoints.api import create_app
from ehr.platform import fhir_changes
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
FEED_TAG = f"{fhir_changes.FEED_TAG['system']}|{fhir_changes.FEED_TAG['code']}"


@pytest.fixture(scope="module")
async def feed_world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, run_id, ["fa", "fb"], change_feed=True) as world:
        yield world


async def outbox_row(db: Sessions, event_id: uuid.UUID) -> EventOutbox | None:
    async with db() as session:
        row: EventOutbox | None = await session.scalar(
            sa.select(EventOutbox).where(EventOutbox.event_id == event_id)
        )
        return row


async def outbox_count(db: Sessions, tenant: str) -> int:
    async with db() as session:
        return int(
            await session.scalar(sa.select(sa.func.count()).where(EventOutbox.tenant == tenant))
            or 0
        )


async def feed_subscriptions(world: World, slug: str) -> list[dict[str, Any]]:
    bundle = await world.fhir.for_tenant(slug).search(
        "Subscription", {"_tag": FEED_TAG, "_count": "100"}
    )
    return [e["resource"] for e in bundle.get("entry", [])]


async def wait_until_feeding(world: World, db: Sessions, slug: str) -> None:
    """HAPI activates new subscriptions within seconds: write probes until one's change event
    is in the outbox (then every later change of this tenant is notified)."""
    tenant_fhir = world.fhir.for_tenant(slug)
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            probe = await tenant_fhir.create(
                {
                    "resourceType": "Patient",
                    "meta": {"tag": [{"system": "urn:ehr:test", "code": world.run}]},
                    "name": [{"family": "Zzfeedprobe"}],
                }
            )
            wanted = fhir_changes.event_id(slug, "fhir.changed", f"Patient/{probe['id']}", "1")
            for _ in range(10):
                if await outbox_row(db, wanted) is not None:
                    return
                await asyncio.sleep(0.3)


async def test_every_tenant_partition_holds_its_subscriptions_and_a_repair_restores_them(
    feed_world: World, settings: Settings
) -> None:
    slug = feed_world.tenants["fb"].slug
    tenant_fhir = feed_world.fhir.for_tenant(slug)
    found = await feed_subscriptions(feed_world, slug)
    assert sorted(s["criteria"] for s in found) == sorted(
        f"{t}?" for t in settings.fhir_changes.resource_types
    )
    assert {s["channel"]["endpoint"] for s in found} == {
        f"{settings.fhir_changes.notify_url.rstrip('/')}/{slug}"
    }
    again = await fhir_changes.ensure_for_tenant(feed_world.fhir, settings, slug)
    assert not again.changed
    assert len(again.kept) == len(settings.fhir_changes.resource_types)

    # Someone broke it: one subscription points elsewhere, one is gone, a stray was added.
    by_type = {s["criteria"].rstrip("?"): s for s in found}
    moved = {
        **by_type["Patient"],
        "channel": {**by_type["Patient"]["channel"], "endpoint": "http://127.0.0.1:9/elsewhere"},
    }
    await tenant_fhir.update(moved)
    await tenant_fhir.delete("Subscription", by_type["Encounter"]["id"])
    stray = {**by_type["Condition"]}
    stray.pop("id")
    stray.pop("meta", None)
    await tenant_fhir.create({**stray, "meta": {"tag": [dict(fhir_changes.FEED_TAG)]}})

    repaired = await fhir_changes.ensure_for_tenant(feed_world.fhir, settings, slug)
    assert repaired.rewritten == ["Patient"]
    assert repaired.created == ["Encounter"]
    assert repaired.deleted == ["Condition"]
    after = await feed_subscriptions(feed_world, slug)
    assert len(after) == len(settings.fhir_changes.resource_types)
    assert not (await fhir_changes.ensure_for_tenant(feed_world.fhir, settings, slug)).changed


async def test_the_worker_refuses_forged_and_replayed_notifications(
    feed_world: World, db: Sessions, settings: Settings
) -> None:
    """Straight to the stack's worker, as HAPI calls it (the URL its subscriptions hold)."""
    slug = feed_world.tenants["fa"].slug
    resource_id = f"forge-{uuid.uuid4().hex[:12]}"
    url = f"{settings.fhir_changes.notify_url.rstrip('/')}/{slug}/Observation/{resource_id}"
    body = {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": {"versionId": "1"},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": f"Patient/{feed_world.tenants['fa'].patient['id']}"},
        "interpretation": [{"coding": [{"system": V3, "code": "HH"}]}],
    }
    secret = fhir_changes.hook_secret(settings.security.secret_key, slug)
    good = {fhir_changes.HOOK_SECRET_HEADER: secret, "Content-Type": "application/fhir+json"}
    changed = fhir_changes.event_id(slug, "fhir.changed", f"Observation/{resource_id}", "1")
    alert = fhir_changes.event_id(slug, "result.critical", f"Observation/{resource_id}", "1")
    other_slug = feed_world.tenants["fb"].slug
    async with httpx.AsyncClient(timeout=10) as client:
        forged = [
            await client.put(url, json=body),
            await client.put(
                url, json=body, headers={**good, fhir_changes.HOOK_SECRET_HEADER: "0" * 64}
            ),
            # Another tenant's (valid) secret is not this tenant's.
            await client.put(
                url,
                json=body,
                headers={
                    **good,
                    fhir_changes.HOOK_SECRET_HEADER: fhir_changes.hook_secret(
                        settings.security.secret_key, other_slug
                    ),
                },
            ),
            # A stranger's oversized body is not even read: refused for who sent it.
            await client.put(
                url, content=b"{" + b" " * (settings.fhir_changes.max_body_bytes + 10) + b"}"
            ),
        ]
        assert [r.status_code for r in forged] == [401, 401, 401, 401]
        assert all(r.json()["resourceType"] == "OperationOutcome" for r in forged)
        assert await outbox_row(db, changed) is None

        # A tenant we do not have, with the secret its slug would get: refused.
        ghost = f"ghost-{uuid.uuid4().hex[:8]}"
        ghost_url = url.replace(f"/{slug}/", f"/{ghost}/")
        ghost_secret = fhir_changes.hook_secret(settings.security.secret_key, ghost)
        refused = await client.put(
            ghost_url, json=body, headers={**good, fhir_changes.HOOK_SECRET_HEADER: ghost_secret}
        )
        assert refused.status_code == 401

        malformed = [
            await client.put(url, content=b"{not json", headers=good),
            await client.put(url, json={**body, "id": "someone-else"}, headers=good),
            await client.put(url, json={**body, "meta": {}}, headers=good),
            # Nested past the JSON depth limit, a number that is not finite, not UTF-8.
            await client.put(url, content=b"[" * 5000 + b"]" * 5000, headers=good),
            await client.put(url, content=b'{"resourceType": NaN}', headers=good),
            await client.put(url, content=b'{"id": "\xff"}', headers=good),
            # A type no subscription watches (the secret is right).
            await client.put(url.replace("/Observation/", "/Basic/"), json=body, headers=good),
        ]
        assert [r.status_code for r in malformed] == [400] * 7
        assert all(r.json()["resourceType"] == "OperationOutcome" for r in malformed)
        huge = await client.put(
            url,
            content=b"{" + b" " * (settings.fhir_changes.max_body_bytes + 10) + b"}",
            headers=good,
        )
        assert huge.status_code == 413
        assert huge.json()["resourceType"] == "OperationOutcome"
        # Not a tenant slug at all: refused before anything else.
        odd = await client.put(url.replace(f"/{slug}/", "/Not_A_Slug/"), json=body, headers=good)
        assert odd.status_code == 401
        assert await outbox_row(db, changed) is None

        taken = await client.put(url, json=body, headers=good)
        assert taken.status_code == 200, taken.text
        change_row, alert_row = await outbox_row(db, changed), await outbox_row(db, alert)
        assert change_row is not None
        assert alert_row is not None
        assert change_row.payload["data"] == {"operation": "create"}
        assert alert_row.payload["subject"] == body["subject"]["reference"]
        before = await outbox_count(db, slug)

        replayed = await client.put(url, json=body, headers=good)
        assert replayed.status_code == 401
        assert await outbox_count(db, slug) == before

        deleted = await client.delete(url, headers=good)
        assert deleted.status_code == 200
        gone = await outbox_row(
            db, fhir_changes.event_id(slug, "fhir.changed", f"Observation/{resource_id}", None)
        )
        assert gone is not None
        assert gone.payload["data"] == {"operation": "delete"}


async def open_socket(ws_base: str, token: str) -> ClientConnection:
    socket = await connect(f"{ws_base}/api/events/ws")
    await socket.send(json.dumps({"type": "auth", "token": token}))
    await next_message(socket, lambda m: m["type"] == "ready")
    return socket


async def received_until(
    socket: ClientConnection, wanted: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """The events received up to and including the first ``wanted`` accepts."""
    seen: list[dict[str, Any]] = []
    await next_message(socket, lambda m: m["type"] == "event" and wanted(m["event"]), seen)
    return [m["event"] for m in seen if m["type"] == "event"]


async def test_a_critical_result_posted_through_fhir_reaches_the_tenants_clinician_only(
    feed_world: World, db: Sessions, settings: Settings
) -> None:
    fa, fb = feed_world.tenants["fa"], feed_world.tenants["fb"]
    await wait_until_feeding(feed_world, db, fa.slug)
    await wait_until_feeding(feed_world, db, fb.slug)
    app = create_app(settings)
    async with serve_app(app) as port:
        base, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
        physician = await open_socket(ws, fa.tokens[Role.PHYSICIAN])
        front_desk = await open_socket(ws, fa.tokens[Role.FRONT_DESK])
        other = await open_socket(ws, fb.tokens[Role.PHYSICIAN])
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as api:
                posted = await api.post(
                    "/fhir/Observation",
                    headers={**fa.auth(Role.PHYSICIAN), "Content-Type": "application/fhir+json"},
                    json={
                        "resourceType": "Observation",
                        "meta": {"tag": [{"system": "urn:ehr:test", "code": feed_world.run}]},
                        "status": "final",
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/"
                                        "CodeSystem/observation-category",
                                        "code": "laboratory",
                                    }
                                ]
                            }
                        ],
                        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
                        "subject": {"reference": f"Patient/{fa.patient['id']}"},
                        "valueQuantity": {
                            "value": 6.9,
                            "unit": "mmol/L",
                            "system": "http://unitsofmeasure.org",
                            "code": "mmol/L",
                        },
                        "interpretation": [{"coding": [{"system": V3, "code": "HH"}]}],
                    },
                )
                assert posted.status_code == 201, posted.text
                observation = f"Observation/{posted.json()['id']}"
                got = await received_until(
                    physician,
                    lambda e: e["type"] == "result.critical" and e["resource"] == observation,
                )
                about = [e["type"] for e in got if e["resource"] == observation]
                assert about == ["fhir.changed", "result.critical"]  # one transaction, in order
                alert = got[-1]
                assert alert["tenant"] == fa.slug
                assert alert["subject"] == f"Patient/{fa.patient['id']}"
                assert alert["data"]["interpretation"] == "HH"
                # ids and codes only: the value 6.9 appears nowhere (as a number, not as digits
                # of a timestamp such as 17:46:06.981)
                assert not re.search(r"(?<![\d.:])6\.9(?!\d)", json.dumps(got))

            # Markers, written after the alert reached the stream: a Patient change each other
            # client may see. What came before its marker is all it will ever get.
            marker_a = await feed_world.fhir.for_tenant(fa.slug).update(
                {**fa.patient, "gender": "female"}
            )
            desk_seen = await received_until(
                front_desk, lambda e: e["resource"] == f"Patient/{marker_a['id']}"
            )
            assert all(e["resource"] != observation for e in desk_seen)
            assert all(e["type"] != "result.critical" for e in desk_seen)

            marker_b = await feed_world.fhir.for_tenant(fb.slug).update(
                {**fb.patient, "gender": "female"}
            )
            other_seen = await received_until(
                other, lambda e: e["resource"] == f"Patient/{marker_b['id']}"
            )
            assert {e["tenant"] for e in other_seen} == {fb.slug}
            assert all(e["resource"] != observation for e in other_seen)
        finally:
            for socket in (physician, front_desk, other):
                await socket.close()
