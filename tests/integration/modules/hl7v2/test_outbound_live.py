"""Outbound HL7 v2 against the real PostgreSQL and HAPI, to a test MLLP receiver (ADR 0033).

A final DiagnosticReport written to HAPI, seen as its ``fhir.changed`` event, becomes an
ORU^R01 queued for the tenant's destination and delivered over MLLP to a receiver listening on
loopback, which answers as a real one would (AA; AE for a message it refuses; nothing while it
is "down"). Checked: the message content (PID, OBR, OBX values, units, flags), the ACK kept;
a redelivered event queues nothing twice; order per destination while the head is retried;
a refusal parks the message and the next goes on; a replay sends it again; a result that came
from the destination's own system is not echoed; a Patient change becomes an ADT^A08;
enhanced-mode application ACKs go back to the sender's own listener, unanswered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from support.database import Sessions, open_sessions
from support.settings import settings_with
from support.tenant_world import World, open_world
from support.throwaway_schema import throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import Hl7Destination, Hl7Message, Hl7OutboundMessage
from ehr.modules import hl7v2
from ehr.platform import events

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """An MLLP receiver: records each message; answers AA, or AE when ``refuse`` matches."""

    received: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # control ids to answer AE
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = hl7v2.FrameReader(reader, max_bytes=1 << 22, idle_timeout=10)
        try:
            while (frame := await frames.next()) is not None:
                text = frame.payload.decode()
                self.received.append(text)
                control = text.split("\r", 1)[0].split("|")[9]
                code = "AE" if control in self.refuse else "AA"
                ack = (
                    "MSH|^~\\&|LIS|LAB|EHR|EHR|20250101||ACK^R01^ACK|A1|P|2.5.1\r"
                    f"MSA|{code}|{control}|{'Unknown test code' if code == 'AE' else ''}\r"
                )
                writer.write(hl7v2.frame_bytes(ack))
                await writer.drain()
        finally:
            writer.close()


def segments(message: str, name: str) -> list[list[str]]:
    return [line.split("|") for line in message.split("\r") if line.startswith(name + "|")]


@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "hl7_out") as local:
        yield settings_with(
            local,
            "hl7",
            outbound_connect_timeout_seconds=2.0,
            outbound_ack_timeout_seconds=2.0,
            outbound_max_attempts=3,
            receiving_application="EHR",
            receiving_facility="MAIN",
        )


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def world(schema_settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(schema_settings, run_id, ["hl7out"]) as made:
        yield made


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    await made.start()
    yield made
    await made.stop()


async def destination(
    world: World, port: int, message_types: list[str], *, app: str = "LIS"
) -> uuid.UUID:
    async with world.sessionmaker() as session, session.begin():
        made = await hl7v2.destinations.register_destination(
            session,
            tenant_id=world.tenants["hl7out"].tenant_id,
            name=f"dest-{uuid.uuid4().hex[:8]}",
            host="127.0.0.1",
            port=port,
            message_types=message_types,
            receiving_application=app,
            receiving_facility="LAB",
            created_by="test",
        )
        return made.id


async def disable_others(world: World, keep: uuid.UUID) -> None:
    async with world.sessionmaker() as session, session.begin():
        await session.execute(
            update(Hl7Destination)
            .where(Hl7Destination.id != keep)
            .values(disabled_at=datetime.now(UTC))
        )


async def final_report(world: World, *, glucose: float, meta: dict[str, Any] | None = None) -> str:
    tenant = world.fhir.for_tenant(world.tenants["hl7out"].slug)
    patient = world.tenants["hl7out"].patient
    observation = await tenant.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": f"Patient/{patient['id']}"},
            "effectiveDateTime": "2025-01-02T07:00:00-05:00",
            "valueQuantity": {
                "value": glucose,
                "unit": "mg/dL",
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
            "interpretation": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "H",
                        }
                    ]
                }
            ],
        }
    )
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "identifier": [{"system": "urn:ehr:test:filler", "value": uuid.uuid4().hex[:10]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "effectiveDateTime": "2025-01-02T07:00:00-05:00",
        "issued": "2025-01-02T09:00:00-05:00",
        "result": [{"reference": f"Observation/{observation['id']}"}],
    }
    if meta is not None:
        report["meta"] = meta
    created = await tenant.create(report)
    return str(created["id"])


async def seen(world: World, sessions: Sessions, reference: str, version: str = "1") -> None:
    """The worker's event consumer calling the handler, in one transaction."""
    event = events.new_event(
        "fhir.changed",
        tenant=world.tenants["hl7out"].slug,
        resource=reference,
        resource_version=version,
        data={"operation": "create" if version == "1" else "update"},
    )
    async with sessions() as session, session.begin():
        await hl7v2.on_fhir_change(session, event, world.settings)


async def queued(sessions: Sessions, destination_id: uuid.UUID) -> list[Hl7OutboundMessage]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Hl7OutboundMessage)
                .where(Hl7OutboundMessage.destination_id == destination_id)
                .order_by(Hl7OutboundMessage.sequence)
            )
        )


async def test_a_final_report_is_sent_as_an_oru_and_its_ack_kept(
    world: World, sessions: Sessions, schema_settings: Settings, receiver: Receiver
) -> None:
    target = await destination(world, receiver.port, ["ORU_R01"])
    await disable_others(world, target)
    report_id = await final_report(world, glucose=182)
    await seen(world, sessions, f"DiagnosticReport/{report_id}")
    await seen(world, sessions, f"DiagnosticReport/{report_id}")  # redelivered: nothing more
    (row,) = await queued(sessions, target)
    assert row.status == "pending"
    assert row.source == f"DiagnosticReport/{report_id}/_history/1"

    run = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert (run.acked, run.parked) == (1, 0)
    (message,) = receiver.received
    msh = segments(message, "MSH")[0]
    assert msh[2:6] == ["EHR", "MAIN", "LIS", "LAB"]
    assert msh[8].startswith("ORU^R01")
    assert msh[9] == row.control_id
    pid = segments(message, "PID")[0]
    assert world.tenants["hl7out"].patient["identifier"][0]["value"] in pid[3]
    obx = segments(message, "OBX")[0]
    assert obx[2] == "NM"
    assert obx[3].startswith("2345-7^")
    assert obx[5] == "182"
    assert obx[6].startswith("mg/dL")
    assert obx[8] == "H"
    assert obx[11] == "F"
    (row,) = await queued(sessions, target)
    assert row.status == "acked"
    assert row.ack_code == "AA"
    assert row.ack is not None
    assert f"MSA|AA|{row.control_id}" in row.ack


async def test_order_is_kept_while_the_head_is_retried_then_a_refusal_parks(
    world: World, sessions: Sessions, schema_settings: Settings
) -> None:
    receiver = Receiver()
    port = await receiver.start()
    await receiver.stop()  # the receiver is down
    target = await destination(world, port, ["ORU_R01"])
    await disable_others(world, target)
    first, second, third = [await final_report(world, glucose=g) for g in (100, 101, 102)]
    for report_id in (first, second, third):
        await seen(world, sessions, f"DiagnosticReport/{report_id}")

    run = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert run.retry_at is not None
    rows = await queued(sessions, target)
    assert [r.status for r in rows] == ["pending"] * 3
    assert rows[0].attempts == 1
    assert rows[0].last_error is not None
    assert (rows[1].attempts, rows[2].attempts) == (0, 0)  # nothing overtook the head
    # Not due yet: another drain sends nothing.
    again = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert again.acked == 0
    assert (await queued(sessions, target))[0].attempts == 1

    # The receiver is back (it refuses the second message); the retry is due.
    receiver.refuse.add(rows[1].control_id)
    await receiver.start(port)
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                update(Hl7OutboundMessage)
                .where(Hl7OutboundMessage.destination_id == target)
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        run = await hl7v2.deliver_pending(sessions, schema_settings, target)
        assert (run.acked, run.parked) == (2, 1)
        sent = [segments(m, "MSH")[0][9] for m in receiver.received]
        assert sent == [r.control_id for r in rows]  # in queue order
        rows = await queued(sessions, target)
        assert [r.status for r in rows] == ["acked", "parked", "acked"]
        assert rows[1].last_error is not None
        assert rows[1].last_error.startswith("refused AE")

        # Fixed on the receiver's side: the operator replays the parked one.
        receiver.refuse.clear()
        async with sessions() as session, session.begin():
            assert await hl7v2.replay_outbound(session, None, [rows[1].id]) == [rows[1].id]
        run = await hl7v2.deliver_pending(sessions, schema_settings, target)
        assert run.acked == 1
        assert [r.status for r in await queued(sessions, target)] == ["acked"] * 3
    finally:
        await receiver.stop()


async def test_a_result_from_the_destinations_own_system_is_not_echoed(
    world: World, sessions: Sessions, receiver: Receiver
) -> None:
    target = await destination(world, receiver.port, ["ORU_R01"], app="ECHOLAB")
    await disable_others(world, target)
    report_id = await final_report(
        world, glucose=90, meta={"source": hl7v2.source_of("ECHOLAB", "LAB")}
    )
    await seen(world, sessions, f"DiagnosticReport/{report_id}")
    assert await queued(sessions, target) == []


async def test_a_patient_change_is_sent_as_adt_a08(
    world: World, sessions: Sessions, schema_settings: Settings, receiver: Receiver
) -> None:
    target = await destination(world, receiver.port, ["ADT_A08"])
    await disable_others(world, target)
    patient = world.tenants["hl7out"].patient
    await seen(world, sessions, f"Patient/{patient['id']}")
    run = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert run.acked == 1
    (message,) = receiver.received
    assert segments(message, "MSH")[0][8].startswith("ADT^A08")
    assert segments(message, "EVN")[0][1] == "A08"
    pid = segments(message, "PID")[0]
    assert patient["name"][0]["family"] in pid[5]


def enhanced_adt(control_id: str, app: str, mrn: str, *, birth_date: str = "19800214") -> str:
    """An ADT^A04 asking for a commit ACK and the application ACK (MSH-15/16 AL)."""
    return (
        "\r".join(
            [
                f"MSH|^~\\&|{app}|HOSP|EHR|MAIN|20250102083000-0500||ADT^A04^ADT_A01|"
                f"{control_id}|P|2.5.1|||AL|AL",
                "EVN|A04|20250102083000-0500",
                f"PID|1||{mrn}^^^HOSP^MR||Ackpatient^Alex||{birth_date}|F",
                "PV1|1|O",
            ]
        )
        + "\r"
    )


async def test_application_acks_go_back_to_the_senders_listener_in_order(
    world: World, sessions: Sessions, schema_settings: Settings, receiver: Receiver
) -> None:
    # The sender's own listener takes its application ACKs (and, here, our results too). The
    # test receiver answers everything, ACKs included: those answers are read and skipped.
    target = await destination(world, receiver.port, ["ACK", "ORU_R01"], app="ACKLAB")
    await disable_others(world, target)
    app = f"ACK{uuid.uuid4().hex[:6].upper()}"
    async with sessions() as session, session.begin():
        sender = await hl7v2.register_sender(
            session,
            tenant_id=world.tenants["hl7out"].tenant_id,
            name=app.lower(),
            sending_application=app,
            sending_facility="HOSP",
            message_types=["ADT_*"],
            created_by="test",
        )
        await hl7v2.inbox.set_ack_destination(session, None, sender.id, target)

    good, bad = f"G{uuid.uuid4().hex[:10]}", f"B{uuid.uuid4().hex[:10]}"
    answer = await hl7v2.receive_payload(
        sessions, schema_settings, enhanced_adt(good, app, f"M{good}"), channel="mllp"
    )
    assert answer.receptions[0].code == "CA"
    # An impossible birth date: accepted for commit (CA), refused by the application (AE) —
    # that application ACK is decided, and queued, at intake.
    answer = await hl7v2.receive_payload(
        sessions,
        schema_settings,
        enhanced_adt(bad, app, f"M{bad}", birth_date="19801345"),
        channel="mllp",
    )
    assert answer.receptions[0].code == "CA"
    async with sessions() as session:
        good_id = (
            await session.scalars(select(Hl7Message.id).where(Hl7Message.control_id == good))
        ).one()
        assert await hl7v2.convert_message(session, schema_settings, good_id) == "converted"
        await session.commit()
    report_id = await final_report(world, glucose=140)
    await seen(world, sessions, f"DiagnosticReport/{report_id}")

    rows = await queued(sessions, target)
    assert [r.message_type for r in rows] == ["ACK", "ACK", "ORU_R01"]
    run = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert (run.sent, run.acked, run.parked) == (2, 1, 0)
    acks = [m for m in receiver.received if segments(m, "MSA")]
    assert len(receiver.received) == 3
    assert [(segments(m, "MSA")[0][1], segments(m, "MSA")[0][2]) for m in acks] == [
        ("AE", bad),
        ("AA", good),
    ]
    for ack in acks:
        msh = segments(ack, "MSH")[0]
        assert msh[2:6] == ["EHR", "MAIN", app, "HOSP"]  # to the sender, from us
        assert msh[8] == "ACK^A04^ACK"
        assert (msh[14], msh[15]) == ("NE", "NE")  # an ACK is not acknowledged
    assert segments(acks[0], "ERR")[0][2].startswith("PID^1^7")
    assert segments(receiver.received[2], "MSH")[0][8].startswith("ORU^R01")
    rows = await queued(sessions, target)
    assert [r.status for r in rows] == ["sent", "sent", "acked"]
    assert rows[2].ack_code == "AA"  # the ORU's own answer, not the reply to an ACK

    # No destination named (or it is disabled): the ACK is kept on the message, not queued.
    async with sessions() as session, session.begin():
        await hl7v2.inbox.set_ack_destination(session, None, sender.id, None)
    third = f"T{uuid.uuid4().hex[:10]}"
    await hl7v2.receive_payload(
        sessions,
        schema_settings,
        enhanced_adt(third, app, f"M{third}", birth_date="19801345"),
        channel="mllp",
    )
    assert len(await queued(sessions, target)) == 3


async def test_retention_deletes_only_old_messages_that_are_done(
    world: World, sessions: Sessions, schema_settings: Settings, receiver: Receiver
) -> None:
    app = f"RET{uuid.uuid4().hex[:6].upper()}"
    async with sessions() as session, session.begin():
        sender = await hl7v2.register_sender(
            session,
            tenant_id=world.tenants["hl7out"].tenant_id,
            name=app.lower(),
            sending_application=app,
            sending_facility="HOSP",
            message_types=["ADT_*"],
            created_by="test",
        )
    controls = {
        name: f"{name[0].upper()}{uuid.uuid4().hex[:10]}"
        for name in ("done", "bad", "waiting", "dead", "recent")
    }
    for name, control in controls.items():
        message = enhanced_adt(
            control, app, f"M{control}", birth_date="19801345" if name == "bad" else "19800214"
        )
        await hl7v2.receive_payload(
            sessions, schema_settings, message.replace("|||AL|AL", ""), channel="mllp"
        )
    async with sessions() as session:
        ids = {
            row.control_id: row.id
            for row in await session.scalars(
                select(Hl7Message).where(Hl7Message.sender_id == sender.id)
            )
        }
        for name in ("done", "recent"):
            assert (
                await hl7v2.convert_message(session, schema_settings, ids[controls[name]])
                == "converted"
            )
        await session.commit()
    long_ago = datetime.now(UTC) - timedelta(days=91)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Hl7Message).where(Hl7Message.id == ids[controls["dead"]]).values(status="dead")
        )
        await session.execute(
            update(Hl7Message)
            .where(Hl7Message.sender_id == sender.id, Hl7Message.control_id != controls["recent"])
            .values(received_at=long_ago)
        )
    # Outbound: an old delivered message, an old parked one, a recent delivered one.
    target = await destination(world, receiver.port, ["ORU_R01"])
    await disable_others(world, target)
    for glucose in (150, 151, 152):
        await seen(
            world, sessions, f"DiagnosticReport/{await final_report(world, glucose=glucose)}"
        )
    run = await hl7v2.deliver_pending(sessions, schema_settings, target)
    assert run.acked == 3
    old_acked, old_parked, new_acked = await queued(sessions, target)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Hl7OutboundMessage)
            .where(Hl7OutboundMessage.id == old_parked.id)
            .values(status="parked")
        )
        await session.execute(
            update(Hl7OutboundMessage)
            .where(Hl7OutboundMessage.id.in_([old_acked.id, old_parked.id]))
            .values(created_at=long_ago)
        )

    counts = await hl7v2.prune_messages(sessions, 90)
    assert counts["inbound_deleted"] >= 2
    assert counts["outbound_deleted"] >= 1
    async with sessions() as session:
        kept = {
            row.control_id: row.status
            for row in await session.scalars(
                select(Hl7Message).where(Hl7Message.sender_id == sender.id)
            )
        }
    assert kept == {
        controls["waiting"]: "accepted",
        controls["dead"]: "dead",
        controls["recent"]: "converted",
    }
    assert [row.id for row in await queued(sessions, target)] == [old_parked.id, new_acked.id]
