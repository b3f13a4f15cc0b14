"""HL7 v2 over MLLP and HTTP against the real PostgreSQL, HAPI and Redis (ADR 0033).

Everything runs in a throwaway app schema with two tenants that have HAPI partitions. The
listener runs in the test's event loop (``hl7v2.Listener`` on a free port) and, for the crash
test, as ``ehr hl7 listen`` in a subprocess killed with SIGKILL mid-stream; a real MLLP client
(asyncio streams, the framing bytes on the wire) talks to it over loopback.

- original mode: AA after the message is in the inbox; a duplicate MSH-10 gets the same ACK and
  no second row; the conversion writes the Patient into the sender's tenant only;
- enhanced mode: CA, then the application ACK once converted; MSH-15 NE: no ACK at all;
- refusals keep the connection usable: unknown sender, event not allowed, garbage, a message
  without MSH, an oversized frame, an unsupported version — each a precise AR with ERR;
- many connections at once; a batch answered as a batch;
- ``kill -9`` of the listener mid-stream: every ACKed message is stored, resending the rest
  stores each exactly once;
- HTTP: an API key with ``hl7:send`` gets the ACK; another tenant's sender is refused; the inbox
  search finds a message by control id and patient, and reading it is audited.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.certificates import tls_files
from support.database import Sessions, open_sessions
from support.in_process import serve
from support.ports import free_port
from support.settings import settings_with
from support.tenant_world import World, open_world
from support.throwaway_schema import throwaway_schema

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord, Hl7Message
from ehr.entrypoints.api import create_app
from ehr.modules import hl7v2
from ehr.platform.auth.api_keys import create_api_key
from ehr.platform.auth.permissions import Role

pytestmark = pytest.mark.integration

PATIENCE_SECONDS = 60.0


def msh(
    control_id: str,
    event: str = "ADT^A01^ADT_A01",
    *,
    app: str = "LAB",
    facility: str = "HOSP",
    version: str = "2.5.1",
    accept_ack: str = "",
    application_ack: str = "",
) -> str:
    tail = f"|||{accept_ack}|{application_ack}" if accept_ack or application_ack else ""
    return (
        f"MSH|^~\\&|{app}|{facility}|EHR|EHR|20250102083000-0500||{event}|{control_id}|P|"
        f"{version}{tail}"
    )


def fields(name: str, values: dict[int, str]) -> str:
    """A segment from its numbered fields (1-based, as the HL7 tables number them)."""
    last = max(values)
    return "|".join([name, *(values.get(n, "") for n in range(1, last + 1))])


def adt(control_id: str, mrn: str, *, family: str = "Testpatient", **header: Any) -> str:
    pid = fields(
        "PID",
        {
            1: "1",
            3: f"{mrn}^^^HOSP^MR",
            5: f"{family}^Alex^J",
            7: "19800214",
            8: "F",
            11: "1 Main St^^Springfield^IL^62701",
        },
    )
    pv1 = fields(
        "PV1",
        {
            1: "1",
            2: "I",
            3: "4W^401^A^HOSP",
            7: "1234^Attending^Ann",
            19: f"V{mrn}^^^HOSP^VN",
            44: "20250102080000-0500",
        },
    )
    return "\r".join([msh(control_id, **header), "EVN|A01|20250102083000-0500", pid, pv1]) + "\r"


# --- a raw MLLP client ---------------------------------------------------------------------------


class MllpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.frames = hl7v2.FrameReader(reader, max_bytes=1 << 22, idle_timeout=PATIENCE_SECONDS)
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> MllpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> str:
        frame = await self.frames.next()
        assert frame is not None, "the listener closed the connection"
        return frame.payload.decode()

    async def exchange(self, message: str) -> str:
        await self.send_raw(hl7v2.frame_bytes(message))
        return await self.receive()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def segment(ack: str, name: str) -> list[str]:
    line = next(line for line in ack.split("\r") if line.startswith(name))
    return line.split("|")


def ack_code(ack: str) -> str:
    return segment(ack, "MSA")[1]


def err_code(ack: str) -> str:
    """ERR-3.1 (2.5+), the HL7 table 0357 code."""
    return segment(ack, "ERR")[3].split("^")[0]


# --- the world -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def schema_settings(settings: Settings) -> AsyncIterator[Settings]:
    async with throwaway_schema(settings, "hl7_live") as local:
        yield settings_with(local, "hl7", max_message_bytes=64 * 1024, receiving_application="EHR")


@pytest.fixture(scope="module")
async def sessions(schema_settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(schema_settings) as made:
        yield made


@pytest.fixture(scope="module")
async def world(schema_settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(schema_settings, run_id, ["hl7a", "hl7b"]) as made:
        yield made


@pytest.fixture(scope="module")
async def senders(world: World) -> dict[str, uuid.UUID]:
    a, b = world.tenants["hl7a"], world.tenants["hl7b"]
    made: dict[str, uuid.UUID] = {}
    async with world.sessionmaker() as session, session.begin():
        for name, tenant, app, types in (
            ("lab", a, "LAB", ["ADT_*", "ORU_R01"]),
            ("registration", b, "REG", ["ADT_A01"]),
            # Its own lane: one sender's conversions run one at a time, in order.
            ("results", a, "RES", ["ORU_R01"]),
            ("results-2", a, "RES2", ["ADT_*"]),
        ):
            sender = await hl7v2.register_sender(
                session,
                tenant_id=tenant.tenant_id,
                name=name,
                sending_application=app,
                sending_facility="HOSP",
                message_types=types,
                created_by="test",
            )
            made[name] = sender.id
    return made


@pytest.fixture(scope="module")
async def port(
    schema_settings: Settings, sessions: Sessions, senders: dict[str, uuid.UUID]
) -> AsyncIterator[int]:
    del senders
    listener = hl7v2.Listener(schema_settings, sessions, host="127.0.0.1", port=0)
    yield await listener.start()
    await listener.close(grace_seconds=5)


@pytest.fixture
async def client(port: int) -> AsyncIterator[MllpClient]:
    made = await MllpClient.connect(port)
    yield made
    await made.close()


async def rows(sessions: Sessions, control_id: str) -> list[Hl7Message]:
    async with sessions() as session:
        return list(
            await session.scalars(select(Hl7Message).where(Hl7Message.control_id == control_id))
        )


async def convert(sessions: Sessions, settings: Settings, message_id: uuid.UUID) -> str:
    async with sessions() as session:
        outcome = await hl7v2.convert_message(session, settings, message_id)
        await session.commit()
    return outcome


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


# --- original mode, duplicates, conversion -------------------------------------------------------


async def test_original_mode_stores_before_aa_and_a_duplicate_gets_the_same_ack(
    client: MllpClient, sessions: Sessions, schema_settings: Settings, world: World
) -> None:
    control_id, mrn = unique("O"), unique("MRN")
    first = await client.exchange(adt(control_id, mrn))
    assert ack_code(first) == "AA"
    assert segment(first, "MSA")[2] == control_id
    assert segment(first, "MSH")[2:6] == ["EHR", "EHR", "LAB", "HOSP"]
    stored = await rows(sessions, control_id)
    assert len(stored) == 1
    assert stored[0].status == "accepted"
    assert stored[0].patient_identifier is not None
    assert mrn in stored[0].patient_identifier

    again = await client.exchange(adt(control_id, mrn, family="Changedname"))
    assert again == first  # the stored ACK, byte for byte
    assert len(await rows(sessions, control_id)) == 1

    assert await convert(sessions, schema_settings, stored[0].id) == "converted"
    assert await convert(sessions, schema_settings, stored[0].id) == "skipped"
    a, b = (
        world.fhir.for_tenant(world.tenants["hl7a"].slug),
        world.fhir.for_tenant(world.tenants["hl7b"].slug),
    )
    found = await a.search("Patient", {"identifier": mrn})
    assert [e["resource"]["name"][0]["family"] for e in found.get("entry", [])] == ["Testpatient"]
    assert not (await b.search("Patient", {"identifier": mrn})).get("entry")
    converted = (await rows(sessions, control_id))[0]
    assert converted.status == "converted"
    assert converted.converted_at is not None
    assert any(ref.startswith("Patient/") for ref in converted.resources["locations"])


async def test_a_resent_message_with_a_new_control_id_updates_not_duplicates(
    client: MllpClient, sessions: Sessions, schema_settings: Settings, world: World
) -> None:
    mrn = unique("MRN")
    for family in ("Before", "After"):
        control_id = unique("U")
        assert ack_code(await client.exchange(adt(control_id, mrn, family=family))) == "AA"
        (row,) = await rows(sessions, control_id)
        assert await convert(sessions, schema_settings, row.id) == "converted"
    tenant = world.fhir.for_tenant(world.tenants["hl7a"].slug)
    patients = (await tenant.search("Patient", {"identifier": mrn})).get("entry", [])
    assert [p["resource"]["name"][0]["family"] for p in patients] == ["After"]
    encounters = await tenant.search(
        "Encounter", {"subject": f"Patient/{patients[0]['resource']['id']}"}
    )
    assert len(encounters.get("entry", [])) == 1


# --- enhanced mode -------------------------------------------------------------------------------


async def test_enhanced_mode_commit_ack_then_the_application_ack(
    client: MllpClient, sessions: Sessions, schema_settings: Settings
) -> None:
    control_id = unique("E")
    ack = await client.exchange(
        adt(control_id, unique("MRN"), accept_ack="AL", application_ack="AL")
    )
    assert ack_code(ack) == "CA"
    (row,) = await rows(sessions, control_id)
    assert row.application_ack is None
    assert await convert(sessions, schema_settings, row.id) == "converted"
    (row,) = await rows(sessions, control_id)
    assert row.application_ack is not None
    assert ack_code(row.application_ack) == "AA"


async def test_msh15_ne_gets_no_ack_and_er_only_on_error(
    client: MllpClient, sessions: Sessions
) -> None:
    silent, loud = unique("N"), unique("L")
    await client.send_raw(hl7v2.frame_bytes(adt(silent, unique("MRN"), accept_ack="NE")))
    await client.send_raw(hl7v2.frame_bytes(adt(loud, unique("MRN"), accept_ack="ER")))
    await client.send_raw(hl7v2.frame_bytes(adt(unique("A"), unique("MRN"), accept_ack="AL")))
    only = await client.receive()  # NE: nothing; ER on success: nothing; AL: this one
    assert ack_code(only) == "CA"
    assert len(await rows(sessions, silent)) == 1
    assert len(await rows(sessions, loud)) == 1


# --- refusals keep the connection usable -----------------------------------------------------


async def test_refusals_are_precise_and_the_connection_stays_usable(
    client: MllpClient, sessions: Sessions
) -> None:
    cases = [
        (adt(unique("X"), "1", app="NOBODY"), "AR", "103"),
        ("\r".join([msh(unique("X"), "ORM^O01^ORM_O01"), "PID|1||1^^^HOSP^MR"]), "AR", "200"),
        ("\r".join([msh(unique("X"), "ORU^R30^ORU_R30"), "PID|1||1^^^HOSP^MR"]), "AR", "201"),
        (adt(unique("X"), "1", version="2.2"), "AR", "203"),
        ("PID|1||12345^^^HOSP^MR||Nomsh^Pat", "AR", "100"),
        ("this is not HL7 at all", "AR", "100"),
    ]
    for message, code, error in cases:
        answer = await client.exchange(message)
        assert ack_code(answer) == code, message[:40]
        assert err_code(answer) == error, message[:40]
    # … but only for the event it registered: its ADT^A01 from the REG app is accepted.
    ok = unique("K")
    assert ack_code(await client.exchange(adt(ok, unique("MRN"), app="REG"))) == "AA"
    assert len(await rows(sessions, ok)) == 1


async def test_an_oversized_frame_and_garbage_between_frames(client: MllpClient) -> None:
    huge = adt(unique("BIG"), "1") + "NTE|1||" + "x" * (200 * 1024) + "\r"
    answer = await client.exchange(huge)
    assert ack_code(answer) == "AR"
    assert "larger than" in segment(answer, "MSA")[3]
    await client.send_raw(b"\r\n\x00garbage\n")
    assert ack_code(await client.exchange(adt(unique("G"), unique("MRN")))) == "AA"


async def test_an_invalid_birth_date_is_an_ae_naming_the_field(
    client: MllpClient, sessions: Sessions
) -> None:
    control_id = unique("D")
    message = adt(control_id, unique("MRN")).replace("|19800214|", "|19801345|")
    answer = await client.exchange(message)
    assert ack_code(answer) == "AE"
    assert segment(answer, "ERR")[2].startswith("PID^1^7")
    (row,) = await rows(sessions, control_id)
    assert row.status == "rejected"
    assert row.error is not None
    assert "PID-7" in row.error


# --- many connections, batches ---------------------------------------------------------------


async def test_many_connections_at_once_each_in_order(port: int, sessions: Sessions) -> None:
    prefix = unique("C")

    async def one_connection(n: int) -> list[str]:
        connection = await MllpClient.connect(port)
        try:
            return [
                ack_code(await connection.exchange(adt(f"{prefix}-{n}-{k}", f"M{prefix}{n}{k}")))
                for k in range(5)
            ]
        finally:
            await connection.close()

    codes = await asyncio.gather(*(one_connection(n) for n in range(20)))
    assert all(code == "AA" for per in codes for code in per)
    async with sessions() as session:
        stored = await session.scalar(
            select(func.count()).where(Hl7Message.control_id.like(f"{prefix}-%"))
        )
    assert stored == 100


async def test_a_batch_is_answered_as_a_batch(client: MllpClient, sessions: Sessions) -> None:
    one, two = unique("B"), unique("B")
    batch = "\r".join(
        [
            "BHS|^~\\&|LAB|HOSP|||20250102||||BATCH1",
            adt(one, unique("MRN")).rstrip("\r"),
            adt(two, unique("MRN")).rstrip("\r"),
            "BTS|2",
        ]
    )
    answer = await client.exchange(batch)
    lines = answer.rstrip("\r").split("\r")
    assert lines[0].startswith("BHS|")
    assert lines[-1] == "BTS|2"
    assert [line.split("|")[2] for line in lines if line.startswith("MSA")] == [one, two]
    assert len(await rows(sessions, one)) == len(await rows(sessions, two)) == 1


# --- kill -9 mid-stream ------------------------------------------------------------------------


class CliProcess:
    """An ``ehr`` command in a subprocess on the test's schema: ``hl7 listen`` (its MLLP port is
    ``port``) or ``worker``."""

    def __init__(self, settings: Settings, *command: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "EHR_DB__URL": settings.db.url.get_secret_value(),
            "EHR_DB__APP_SCHEMA": settings.db.app_schema,
            "EHR_HL7__MLLP_PORT": str(self.port),
            "EHR_HL7__HEALTH_PORT": "0",
            "EHR_JOBS__HEALTH_PORT": "0",
            "EHR_FHIR_CHANGES__ENABLED": "false",
            # A killed worker's jobs are recovered within seconds, not the default 30 s.
            "EHR_JOBS__HEARTBEAT_SECONDS": "0.5",
            "EHR_JOBS__STALLED_AFTER_SECONDS": "3",
            "EHR_JOBS__SWEEP_SECONDS": "0.5",
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "ehr.entrypoints.cli", *command],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    async def ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"listener exited: {self.output()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            writer.close()
            return
        raise AssertionError("listener not listening")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextmanager
def cli_process(settings: Settings, *command: str) -> Iterator[CliProcess]:
    process = CliProcess(settings, *command)
    try:
        yield process
    finally:
        process.stop()


async def test_kill_9_mid_stream_loses_nothing_acknowledged_and_stores_each_once(
    schema_settings: Settings, sessions: Sessions, senders: dict[str, uuid.UUID]
) -> None:
    del senders
    prefix = unique("K9")
    messages = [adt(f"{prefix}-{n:03d}", f"K{prefix}{n:03d}") for n in range(120)]
    acknowledged: set[str] = set()
    with cli_process(schema_settings, "hl7", "listen") as first:
        await first.ready()
        connection = await MllpClient.connect(first.port)
        # Pipelined: every frame on the wire at once; ACKs come back in order.
        await connection.send_raw(b"".join(hl7v2.frame_bytes(m) for m in messages))
        for _ in range(30):
            acknowledged.add(segment(await connection.receive(), "MSA")[2])
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        try:
            while True:
                acknowledged.add(segment(await connection.receive(), "MSA")[2])
        except (AssertionError, ConnectionError, IndexError):
            pass  # the connection died with the listener
        connection.writer.close()
    assert len(acknowledged) >= 30
    async with sessions() as session:
        stored = set(
            await session.scalars(
                select(Hl7Message.control_id).where(Hl7Message.control_id.like(f"{prefix}-%"))
            )
        )
    assert acknowledged <= stored  # every ACKed message was committed first

    # The sender resends what it has no ACK for (some may be stored already: duplicates).
    with cli_process(schema_settings, "hl7", "listen") as second:
        await second.ready()
        connection = await MllpClient.connect(second.port)
        for message in messages:
            control_id = message.split("\r", 1)[0].split("|")[9]
            if control_id not in acknowledged:
                assert ack_code(await connection.exchange(message)) == "AA"
        await connection.close()
    async with sessions() as session:
        counted = await session.scalar(
            select(func.count()).where(Hl7Message.control_id.like(f"{prefix}-%"))
        )
    assert counted == len(messages)  # 0 lost, none twice


# --- the worker converts what the listener stored --------------------------------------------


def oru(control_id: str, mrn: str, order: str, *, glucose: str, status: str = "F") -> str:
    pid = fields("PID", {1: "1", 3: f"{mrn}^^^HOSP^MR", 5: "Resultpatient^Sam", 7: "19700101"})
    orc = fields("ORC", {1: "RE", 2: f"{order}^EHR", 3: f"F{order}^LAB"})
    obr = fields(
        "OBR",
        {
            1: "1",
            2: f"{order}^EHR",
            3: f"F{order}^LAB",
            4: "24323-8^Comprehensive metabolic panel^LN",
            7: "20250102070000-0500",
            22: "20250102090000-0500",
            25: status,
        },
    )
    obx = [
        fields(
            "OBX",
            {
                1: "1",
                2: "NM",
                3: "2345-7^Glucose^LN",
                5: glucose,
                6: "mg/dL^mg/dL^UCUM",
                7: "70-99",
                8: "H" if float(glucose) > 99 else "N",
                11: status,
                14: "20250102070000-0500",
            },
        ),
        fields(
            "OBX",
            {
                1: "2",
                2: "NM",
                3: "2951-2^Sodium^LN",
                5: "140",
                6: "mmol/L^mmol/L^UCUM",
                7: "136-145",
                8: "N",
                11: status,
                14: "20250102070000-0500",
            },
        ),
    ]
    header = msh(control_id, "ORU^R01^ORU_R01", app="RES")
    return "\r".join([header, pid, orc, obr, *obx]) + "\r"


async def _converted(sessions: Sessions, control_id: str, worker: CliProcess) -> Hl7Message:
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        found = await rows(sessions, control_id)
        if found and found[0].status not in {"accepted", "failed"}:
            return found[0]
        await asyncio.sleep(0.3)
    raise AssertionError(f"{control_id} not converted in {PATIENCE_SECONDS} s: {worker.output()}")


async def test_the_worker_converts_results_and_a_correction_updates_them(
    schema_settings: Settings, client: MllpClient, sessions: Sessions, world: World
) -> None:
    mrn, order = unique("MRN"), unique("ORD")
    tenant = world.fhir.for_tenant(world.tenants["hl7a"].slug)
    with cli_process(schema_settings, "worker") as worker:
        first = unique("R")
        assert ack_code(await client.exchange(oru(first, mrn, order, glucose="182"))) == "AA"
        row = await _converted(sessions, first, worker)
        assert row.status == "converted", row.error
        reports = (await tenant.search("DiagnosticReport", {"identifier": f"F{order}"}))["entry"]
        assert len(reports) == 1
        results = reports[0]["resource"]["result"]
        assert len(results) == 2
        glucose_id = results[0]["reference"].split("/")[1]
        glucose = await tenant.read("Observation", glucose_id)
        assert glucose["valueQuantity"]["value"] == 182
        assert glucose["status"] == "final"

        corrected = unique("R")
        answer = await client.exchange(oru(corrected, mrn, order, glucose="92", status="C"))
        assert ack_code(answer) == "AA"
        assert (await _converted(sessions, corrected, worker)).status == "converted"
    reports = (await tenant.search("DiagnosticReport", {"identifier": f"F{order}"}))["entry"]
    assert len(reports) == 1  # updated, not duplicated
    assert [r["reference"] for r in reports[0]["resource"]["result"]] == [
        r["reference"] for r in results
    ]
    glucose = await tenant.read("Observation", glucose_id)
    assert glucose["valueQuantity"]["value"] == 92
    assert glucose["status"] == "corrected"
    assert glucose["meta"]["versionId"] == "2"


async def test_kill_9_of_the_converter_mid_stream_converts_each_message_once(
    schema_settings: Settings, client: MllpClient, sessions: Sessions, world: World
) -> None:
    prefix = unique("KW")
    messages = [(f"{prefix}-{n:02d}", f"W{prefix}{n:02d}") for n in range(40)]
    with cli_process(schema_settings, "worker") as first:
        for control_id, mrn in messages:
            assert ack_code(await client.exchange(adt(control_id, mrn, app="RES2"))) == "AA"
        # Let it convert some, then kill it in the middle of the stream.
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            async with sessions() as session:
                done = await session.scalar(
                    select(func.count()).where(
                        Hl7Message.control_id.like(f"{prefix}-%"),
                        Hl7Message.status == "converted",
                    )
                )
            if done and done >= 5:
                break
            await asyncio.sleep(0.1)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    with cli_process(schema_settings, "worker") as second:
        for control_id, _ in messages:
            row = await _converted(sessions, control_id, second)
            assert row.status == "converted", row.error
    tenant = world.fhir.for_tenant(world.tenants["hl7a"].slug)
    for _, mrn in messages:
        found = (await tenant.search("Patient", {"identifier": mrn})).get("entry", [])
        assert len(found) == 1, mrn  # once, whatever the kill interrupted
        encounters = await tenant.search(
            "Encounter", {"subject": f"Patient/{found[0]['resource']['id']}"}
        )
        assert len(encounters.get("entry", [])) == 1, mrn


# --- HTTP, the inbox API, audit ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(schema_settings: Settings, world: World) -> AsyncIterator[httpx.AsyncClient]:
    del world
    async with serve(create_app(schema_settings)) as made:
        yield made


async def _sender_key(world: World, label: str) -> str:
    async with world.sessionmaker() as session, session.begin():
        _, plaintext = await create_api_key(
            session,
            tenant_id=world.tenants[label].tenant_id,
            name="interface engine",
            permissions=["hl7:send"],
            ttl_days=1,
            created_by="test",
        )
    return plaintext


async def test_http_intake_answers_the_ack_and_binds_the_tenant(
    api: httpx.AsyncClient, world: World, senders: dict[str, uuid.UUID], sessions: Sessions
) -> None:
    del senders
    key = await _sender_key(world, "hl7a")
    headers = {"X-API-Key": key, "Content-Type": hl7v2.ER7_MEDIA_TYPE}
    control_id, mrn = unique("H"), unique("MRN")
    answer = await api.post("/api/hl7v2/messages", content=adt(control_id, mrn), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(hl7v2.ER7_MEDIA_TYPE)
    assert ack_code(answer.text) == "AA"
    (row,) = await rows(sessions, control_id)
    assert row.channel == "http"
    # The REG sender belongs to the other tenant: refused like an unknown one, nothing stored.
    foreign = unique("F")
    refused = await api.post(
        "/api/hl7v2/messages", content=adt(foreign, mrn, app="REG"), headers=headers
    )
    assert refused.status_code == 200
    assert ack_code(refused.text) == "AR"
    assert await rows(sessions, foreign) == []
    no_key = await api.post(
        "/api/hl7v2/messages",
        content=adt(unique("Z"), mrn),
        headers={"Content-Type": hl7v2.ER7_MEDIA_TYPE},
    )
    assert no_key.status_code == 401
    assert no_key.headers["content-type"].startswith("application/problem+json")
    wrong_type = await api.post(
        "/api/hl7v2/messages", json={"message": "x"}, headers={"X-API-Key": key}
    )
    assert wrong_type.status_code == 415
    assert wrong_type.headers["content-type"].startswith("application/problem+json")
    # Larger than EHR_HL7__MAX_MESSAGE_BYTES (64 KiB here): 413, nothing stored.
    huge_id = unique("HUGE")
    huge = adt(huge_id, mrn) + "NTE|1||" + "x" * (100 * 1024) + "\r"
    too_large = await api.post("/api/hl7v2/messages", content=huge, headers=headers)
    assert too_large.status_code == 413
    assert too_large.headers["content-type"].startswith("application/problem+json")
    assert await rows(sessions, huge_id) == []


async def test_the_inbox_is_searchable_tenant_bound_and_audited(
    api: httpx.AsyncClient, world: World, client: MllpClient, sessions: Sessions
) -> None:
    control_id, mrn = unique("S"), unique("MRN")
    assert ack_code(await client.exchange(adt(control_id, mrn))) == "AA"
    admin_a = world.tenants["hl7a"].auth(Role.ADMIN)
    admin_b = world.tenants["hl7b"].auth(Role.ADMIN)
    found = await api.get("/api/hl7v2/messages", params={"control_id": control_id}, headers=admin_a)
    assert found.status_code == 200, found.text
    (item,) = found.json()["items"]
    assert item["status"] == "accepted"
    assert "raw" not in item
    by_patient = await api.get("/api/hl7v2/messages", params={"patient": mrn}, headers=admin_a)
    assert [m["control_id"] for m in by_patient.json()["items"]] == [control_id]
    detail = await api.get(f"/api/hl7v2/messages/{item['id']}", headers=admin_a)
    assert detail.status_code == 200
    assert detail.json()["raw"].startswith("MSH|")
    assert (await api.get(f"/api/hl7v2/messages/{item['id']}", headers=admin_b)).status_code == 404
    empty = await api.get("/api/hl7v2/messages", params={"control_id": control_id}, headers=admin_b)
    assert empty.json()["items"] == []
    nurse = world.tenants["hl7a"].auth(Role.NURSE)
    assert (await api.get("/api/hl7v2/messages", headers=nurse)).status_code == 403
    async with sessions() as session:
        audited = await session.scalar(
            select(func.count()).where(
                AuditRecord.action == "hl7v2:read", AuditRecord.resource_id == item["id"]
            )
        )
    assert audited == 1


async def test_a_senders_ack_destination_is_set_through_the_api(
    api: httpx.AsyncClient, world: World
) -> None:
    admin_a = world.tenants["hl7a"].auth(Role.ADMIN)
    admin_b = world.tenants["hl7b"].auth(Role.ADMIN)

    async def destination(types: list[str], headers: dict[str, str]) -> str:
        made = await api.post(
            "/api/hl7v2/destinations",
            json={
                "name": unique("acks-"),
                "host": "lab.example.org",
                "port": 2576,
                "message_types": types,
                "receiving_application": "APIACK",
                "receiving_facility": "HOSP",
            },
            headers=headers,
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    acks, results_only = (
        await destination(["ACK"], admin_a),
        await destination(["ORU_R01"], admin_a),
    )
    foreign = await destination(["ACK"], admin_b)
    body = {
        "name": unique("apiack-"),
        "sending_application": unique("APIACK"),
        "sending_facility": "HOSP",
        "message_types": ["ADT_*"],
        "ack_destination_id": acks,
    }
    created = await api.post("/api/hl7v2/senders", json=body, headers=admin_a)
    assert created.status_code == 201, created.text
    sender = created.json()
    assert sender["ack_destination_id"] == acks
    path = f"/api/hl7v2/senders/{sender['id']}"
    cleared = await api.patch(path, json={"ack_destination_id": None}, headers=admin_a)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["ack_destination_id"] is None
    # A destination that does not take ACK, or another tenant's: 422, nothing changed.
    for wrong in (results_only, foreign):
        refused = await api.patch(path, json={"ack_destination_id": wrong}, headers=admin_a)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "hl7_ack_destination_invalid"
    refused = await api.post(
        "/api/hl7v2/senders",
        json={**body, "sending_application": unique("APIACK"), "ack_destination_id": foreign},
        headers=admin_a,
    )
    assert refused.status_code == 422
    # Another tenant's admin cannot see or change the sender.
    other = await api.patch(path, json={"ack_destination_id": foreign}, headers=admin_b)
    assert other.status_code == 404
    listed = await api.get("/api/hl7v2/senders", headers=admin_a)
    (mine,) = [s for s in listed.json()["items"] if s["id"] == sender["id"]]
    assert mine["ack_destination_id"] is None


# --- A40: merge, references moved --------------------------------------------------------------


async def test_a_merge_links_the_patients_and_moves_references(
    client: MllpClient, sessions: Sessions, schema_settings: Settings, world: World
) -> None:
    old_mrn, new_mrn = unique("OLD"), unique("NEW")
    for control_id, mrn in ((unique("M"), old_mrn), (unique("M"), new_mrn)):
        assert ack_code(await client.exchange(adt(control_id, mrn))) == "AA"
        (row,) = await rows(sessions, control_id)
        assert await convert(sessions, schema_settings, row.id) == "converted"
    merge = unique("A40")
    message = "\r".join(
        [
            msh(merge, "ADT^A40^ADT_A39"),
            "EVN|A40|20250103100000-0500",
            fields("PID", {1: "1", 3: f"{new_mrn}^^^HOSP^MR", 5: "Testpatient^Alex^J"}),
            fields("MRG", {1: f"{old_mrn}^^^HOSP^MR"}),
        ]
    )
    assert ack_code(await client.exchange(message)) == "AA"
    (row,) = await rows(sessions, merge)
    assert await convert(sessions, schema_settings, row.id) == "converted"
    (row,) = await rows(sessions, merge)
    assert row.resources is not None
    (moved,) = row.resources["merges"]
    assert moved.endswith("references moved")

    tenant = world.fhir.for_tenant(world.tenants["hl7a"].slug)
    old = (await tenant.search("Patient", {"identifier": old_mrn}))["entry"][0]["resource"]
    new = (await tenant.search("Patient", {"identifier": new_mrn}))["entry"][0]["resource"]
    assert old["active"] is False
    assert {"type": "replaced-by", "other": {"reference": f"Patient/{new['id']}"}} in [
        {"type": link["type"], "other": {"reference": link["other"]["reference"]}}
        for link in old["link"]
    ]
    assert [(link["type"], link["other"]["reference"]) for link in new["link"]] == [
        ("replaces", f"Patient/{old['id']}")
    ]
    # The thin PID of the A40 did not wipe what registration sent for the survivor.
    assert new["address"][0]["line"] == ["1 Main St"]
    # The old patient's encounter now belongs to the survivor.
    assert not (await tenant.search("Encounter", {"subject": f"Patient/{old['id']}"})).get("entry")
    moved_encounters = await tenant.search("Encounter", {"subject": f"Patient/{new['id']}"})
    assert len(moved_encounters.get("entry", [])) == 2


# --- critical results go through the results rules --------------------------------------------


async def test_a_critical_value_the_lab_did_not_flag_gets_flagged_and_a_worklist_task(
    client: MllpClient, sessions: Sessions, schema_settings: Settings, world: World
) -> None:
    mrn, order = unique("MRN"), unique("ORD")
    tenant = world.fhir.for_tenant(world.tenants["hl7a"].slug)
    for control_id in (unique("C"), unique("C")):  # sent, then resent
        message = oru(control_id, mrn, order, glucose="600").replace("|H|", "||", 1)
        assert ack_code(await client.exchange(message)) == "AA"
        (row,) = await rows(sessions, control_id)
        assert await convert(sessions, schema_settings, row.id) == "converted"
        (row,) = await rows(sessions, control_id)
        assert row.resources is not None
        assert row.resources["critical_reports"] == 1
    (report,) = [
        e["resource"]
        for e in (await tenant.search("DiagnosticReport", {"identifier": f"F{order}"}))["entry"]
    ]
    glucose = await tenant.read("Observation", report["result"][0]["reference"].split("/")[1])
    codes = [c["code"] for i in glucose["interpretation"] for c in i["coding"]]
    assert "HH" in codes  # the tenant's critical table (glucose > 450 mg/dL)
    tasks = (await tenant.search("Task", {"focus": f"DiagnosticReport/{report['id']}"}))["entry"]
    assert len(tasks) == 1  # once, though the ORU came twice
    task = tasks[0]["resource"]
    assert task["priority"] == "stat"
    assert task["status"] == "requested"
    assert task["for"]["reference"] == report["subject"]["reference"]
    assert [i["valueReference"]["reference"] for i in task["input"]] == [
        f"Observation/{glucose['id']}"
    ]


# --- MLLP over TLS, mutual TLS -----------------------------------------------------------------


async def _exchange_once(port: int, context: ssl.SSLContext | None, message: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    client = MllpClient(reader, writer)
    try:
        return await client.exchange(message)
    finally:
        client.writer.close()


async def test_mllp_over_mutual_tls(
    schema_settings: Settings, sessions: Sessions, tmp_path: Path, senders: dict[str, uuid.UUID]
) -> None:
    del senders
    files = tls_files(tmp_path)
    secured = settings_with(
        schema_settings,
        "hl7",
        tls_cert_file=str(files.server_cert),
        tls_key_file=str(files.server_key),
        tls_client_ca_file=str(files.ca),
    )
    listener = hl7v2.Listener(secured, sessions, host="127.0.0.1", port=0)
    port = await listener.start()
    try:
        trusted = ssl.create_default_context(cafile=str(files.ca))
        trusted.load_cert_chain(str(files.client_cert), str(files.client_key))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusted)
        client = MllpClient(reader, writer)
        control_id = unique("TLS")
        assert ack_code(await client.exchange(adt(control_id, unique("MRN")))) == "AA"
        await client.close()
        assert len(await rows(sessions, control_id)) == 1

        # No client certificate: the handshake (or the first read) fails; nothing is stored.
        anonymous = ssl.create_default_context(cafile=str(files.ca))
        refused = unique("TLS")
        with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
            await _exchange_once(port, anonymous, adt(refused, unique("MRN")))
        assert await rows(sessions, refused) == []
        # Plain MLLP to a TLS listener: no ACK, nothing stored.
        plain = unique("TLS")
        with pytest.raises((AssertionError, ConnectionError)):
            await _exchange_once(port, None, adt(plain, unique("MRN")))
        assert await rows(sessions, plain) == []
    finally:
        await listener.close(grace_seconds=2)


# --- the operator's CLI ---------------------------------------------------------------------


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "EHR_DB__URL": settings.db.url.get_secret_value(),
        "EHR_DB__APP_SCHEMA": settings.db.app_schema,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ehr.entrypoints.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), PATIENCE_SECONDS)
    return process.returncode or 0, output.decode()


async def test_ehr_hl7_send_prints_the_acks_and_the_inbox_lists_them(
    schema_settings: Settings, port: int, sessions: Sessions, tmp_path: Path
) -> None:
    first, second = unique("CLI"), unique("CLI")
    batch = tmp_path / "two.hl7"
    batch.write_text(
        "\n".join(
            [
                "BHS|^~\\&|LAB|HOSP",
                adt(first, unique("MRN")).replace("\r", "\n"),
                adt(second, unique("MRN")).replace("\r", "\n"),
                "BTS|2",
            ]
        )
    )
    code, output = await _cli(schema_settings, "hl7", "send", str(batch), "--port", str(port))
    assert code == 0, output
    assert f"MSA|AA|{first}" in output
    assert f"MSA|AA|{second}" in output
    code, output = await _cli(schema_settings, "hl7", "inbox", "--control-id", first)
    assert code == 0, output
    (line,) = [line for line in output.splitlines() if line.startswith("{")]
    assert json.loads(line)["control_id"] == first
    assert "raw" not in json.loads(line)  # bodies only through the audited API

    refused = tmp_path / "unknown.hl7"
    refused.write_text(adt(unique("CLI"), unique("MRN"), app="NOBODY"))
    code, output = await _cli(schema_settings, "hl7", "send", str(refused), "--port", str(port))
    assert code == 1
    assert "MSA|AR|" in output
