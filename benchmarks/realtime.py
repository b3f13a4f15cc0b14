"""The realtime channel (ADR 0025): event → WebSocket latency end to end, and the memory of 500
idle WebSocket clients (issue 16, item 7).

    .venv/bin/python -m ehr.devstack run -- .venv/bin/python benchmarks/realtime.py \
        [--rounds 5] [--events 40] [--clients 500]

Everything in a throwaway app schema (migrated to head, dropped at the end) and its own stream
(``ehr:events:<schema>``): a tenant (``tenancy.create_tenant``: a real HAPI partition, removed at
the end with what was written in it), a physician and its access token (real code paths).
The API runs as production starts it (``ehr serve``, one worker: uvloop, httptools, the
``websockets`` implementation), warnings only, on that schema. The relay runs in this process
(``events.run_relay``, NOTIFY wake-up) on the same schema.

Latency: one WebSocket client (the physician, subscribed to everything it may see) and, in this
process, a plain ``XREAD BLOCK`` loop on the same stream (the floor: Redis itself). Events are
sent one at a time (the next after the client got the previous), variants interleaved per round:

  xadd     t0 = just before the relay's writer (``xadd_events``) adds the entry
  outbox   t0 = just before the transaction holding ``events.emit`` commits (→ NOTIFY → relay
           → XADD); what a module's event costs to reach a screen
  fhir     t0 = just before a FHIR create of an Observation is sent to HAPI (the tenant's
           partition); HAPI's REST-hook subscription → the notification listener (the worker's,
           ``fhir_changes.add_notification_routes``, served in this process on the bench schema)
           → outbox → relay → stream; the ``fhir.changed`` event (ADR 0027). The write's own
           round trip is printed beside it

each measured to the XREAD loop's receipt (``→ xread``) and to the WebSocket client's receipt
(``→ ws``). Prints p50/p95 per round and the median of round values (min..max).

Fan-out: with those clients connected (all clinicians of the tenant), one event at a time:
until the first, the median and the last client has it.

Memory: VmRSS of the server process idle (after one client came and went), with ``--clients``
authenticated idle WebSocket clients connected (after they all got ``ready`` and 2 s passed),
and after they left; the difference per client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiohttp import web
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.migrate import upgrade
from ehr.core.db.models import job_queue_schema
from ehr.core.errors import AppError
from ehr.fhir import FhirClient
from ehr.platform import events, fhir_changes
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.events.outbox import xadd_events
from ehr.platform.tenancy import create_tenant
from ehr.platform.tenancy.partitions import delete_partition

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "Tall-Quiet-Harbour-Lamps-42"  # noqa: S105 - a throwaway schema's user
PATIENCE_SECONDS = 60.0


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} ({min(values):.2f}..{max(values):.2f})"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.1f} GiB RAM"
    load = "/".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}){mem}, load {load}; {platform.system()} "
        f"{platform.release()}; Python {sys.version.split()[0]}"
    )


def revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "backend/ehr/platform/realtime"],  # noqa: S607
            cwd=REPO, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted realtime changes" if dirty else head


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- set-up --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bench_schema(settings: Settings) -> AsyncIterator[Settings]:
    schema = f"bench_realtime_{uuid.uuid4().hex[:8]}"
    local = settings.model_copy(
        update={"db": settings.db.model_copy(update={"app_schema": schema})}
    )
    await upgrade(local)
    redis = Redis.from_url(settings.redis.url.get_secret_value())
    try:
        yield local
    finally:
        await redis.delete(events.stream_key(events.EventsSettings(), schema))
        await redis.aclose()
        engine = create_engine(settings.db)
        async with engine.begin() as connection:
            for name in (job_queue_schema(schema), schema):
                await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await engine.dispose()


async def physician_token(local: Settings, fhir: FhirClient) -> tuple[str, str, int]:
    """(tenant slug, access token, partition id) of a physician made in the bench schema."""
    engine = create_engine(local.db)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            slug = f"bench-rt-{uuid.uuid4().hex[:6]}"
            tenant, _ = await create_tenant(session, fhir, slug=slug, name="Bench realtime")
            user = await create_user(
                session,
                tenant_id=tenant.id,
                username="bench.physician",
                password=PASSWORD,
                roles=["physician"],
                settings=local,
            )
            token = await issue_access_token_for(session, local, user)
            return slug, token, tenant.partition_id
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def change_feed(
    local: Settings, fhir: FhirClient, slug: str, sessions: Any
) -> AsyncIterator[Settings]:
    """The tenant's Observation subscription notifying a listener served here (the worker's
    routes, on the bench schema); removed at the end."""
    port = free_port()
    feed = local.model_copy(
        update={
            "fhir_changes": local.fhir_changes.model_copy(
                update={
                    "notify_url": f"http://127.0.0.1:{port}/internal/fhir-notifications",
                    "resource_types": ["Observation"],
                }
            )
        }
    )
    http = web.Application(client_max_size=feed.fhir_changes.max_body_bytes)
    fhir_changes.add_notification_routes(http, sessions, feed)
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await fhir_changes.ensure_for_tenant(fhir, feed, slug)
        yield feed
    finally:
        off = feed.fhir_changes.model_copy(update={"enabled": False})
        await fhir_changes.ensure_subscriptions(
            fhir.for_tenant(slug), off, feed.security.secret_key, slug
        )
        await runner.cleanup()


@contextlib.contextmanager
def api_process(local: Settings, port: int, log: Path) -> Any:
    env = {
        **os.environ,
        "EHR_DB__APP_SCHEMA": local.db.app_schema,
        "EHR_LOG__LEVEL": "WARNING",
        # Heartbeats off the measured path (an idle client still gets one a minute).
        "EHR_REALTIME__HEARTBEAT_SECONDS": "60",
    }
    ehr = Path(sys.executable).with_name("ehr")
    command = [str(ehr), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out)  # noqa: S603
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the API exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/health", timeout=2.0)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise SystemExit("the API was not ready within 90 s")


async def open_client(ws_url: str, token: str) -> ClientConnection:
    socket_ = await connect(f"{ws_url}/api/events/ws", max_queue=64)
    await socket_.send(json.dumps({"type": "auth", "token": token}))
    async with asyncio.timeout(PATIENCE_SECONDS):
        while json.loads(await socket_.recv())["type"] != "ready":
            pass
    return socket_


# --- latency ---------------------------------------------------------------------------------


class Receipts:
    """When each event id was seen by the XREAD loop and by the WebSocket client."""

    def __init__(self) -> None:
        self.xread: dict[str, float] = {}
        self.ws: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def read_stream(self, redis: Redis, key: str) -> None:
        last = "$"
        while True:
            answer: Any = await redis.xread({key: last}, block=1_000, count=100)
            now = time.perf_counter()
            for _key, rows in answer or ():
                for entry_id, fields in rows:
                    last = entry_id
                    event_id = json.loads(fields[b"event"])["id"]
                    self.xread[event_id] = now

    async def read_socket(self, socket_: ClientConnection) -> None:
        while True:
            message = json.loads(await socket_.recv())
            now = time.perf_counter()
            if message["type"] == "event":
                self.ws[message["event"]["id"]] = now
                self.arrived.set()

    async def wait_for(self, event_id: str) -> None:
        async with asyncio.timeout(PATIENCE_SECONDS):
            while event_id not in self.ws or event_id not in self.xread:
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self.arrived.wait()


class FhirWrites:
    """Observation creates in the bench tenant's partition (ids kept for the clean-up)."""

    def __init__(self, fhir: FhirClient, slug: str) -> None:
        self.fhir = fhir.for_tenant(slug)
        self.slug = slug
        self.patient = ""
        self.written: list[str] = []
        self.write_ms: list[float] = []

    async def open(self) -> None:
        patient = await self.fhir.create({"resourceType": "Patient", "name": [{"family": "Zzb"}]})
        self.patient = str(patient["id"])

    def observation(self) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"reference": f"Patient/{self.patient}"},
        }

    async def write(self) -> tuple[float, str]:
        """(t0, the id of the event the write must yield)."""
        t0 = time.perf_counter()
        created = await self.fhir.create(self.observation())
        self.write_ms.append((time.perf_counter() - t0) * 1000)
        self.written.append(str(created["id"]))
        reference = f"Observation/{created['id']}"
        return t0, str(fhir_changes.event_id(self.slug, "fhir.changed", reference, "1"))

    async def remove(self) -> None:
        for resource_id in self.written:
            with contextlib.suppress(AppError):
                await self.fhir.delete("Observation", resource_id)
        if self.patient:
            with contextlib.suppress(AppError):
                await self.fhir.delete("Patient", self.patient)


async def one_event(
    variant: str,
    slug: str,
    redis: Redis,
    key: str,
    sessions: Any,
    receipts: Receipts,
    writes: FhirWrites,
) -> tuple[float, float]:
    if variant == "fhir":
        t0, wanted = await writes.write()
        await receipts.wait_for(wanted)
        return ((receipts.xread[wanted] - t0) * 1000, (receipts.ws[wanted] - t0) * 1000)
    event = events.new_event(
        "result.critical",
        tenant=slug,
        subject="Patient/bench",
        resource=f"DiagnosticReport/{uuid.uuid4().hex[:12]}",
        data={"critical": True},
    )
    if variant == "xadd":
        t0 = time.perf_counter()
        await xadd_events(redis, key, [event.model_dump(mode="json")], maxlen=100_000)
    else:
        async with sessions() as session, session.begin():
            events.emit(session, event)
            await session.flush()
            t0 = time.perf_counter()
    await receipts.wait_for(str(event.id))
    return (
        (receipts.xread[str(event.id)] - t0) * 1000,
        (receipts.ws[str(event.id)] - t0) * 1000,
    )


VARIANTS = ("xadd", "outbox", "fhir")


async def feeding(writes: FhirWrites, receipts: Receipts) -> None:
    """HAPI activates a new subscription within seconds: write until a write is notified."""
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            _t0, wanted = await writes.write()
            for _ in range(20):
                if wanted in receipts.ws and wanted in receipts.xread:
                    return
                await asyncio.sleep(0.1)


async def latency(
    args: argparse.Namespace,
    local: Settings,
    slug: str,
    token: str,
    ws_url: str,
    fhir: FhirClient,
) -> None:
    key = events.stream_key(events.EventsSettings(), local.db.app_schema)
    redis = Redis.from_url(local.redis.url.get_secret_value())
    reader_redis = Redis.from_url(local.redis.url.get_secret_value())
    engine = create_engine(local.db)
    sessions = create_sessionmaker(engine)
    stop = asyncio.Event()
    relay = asyncio.create_task(
        events.run_relay(local, stop=stop, events=events.EventsSettings(relay_poll_seconds=1.0))
    )
    receipts = Receipts()
    client = await open_client(ws_url, token)
    tasks = [
        asyncio.create_task(receipts.read_stream(reader_redis, key)),
        asyncio.create_task(receipts.read_socket(client)),
    ]
    await asyncio.sleep(0.5)  # the XREAD loop is waiting
    table: dict[tuple[str, str], list[tuple[float, float]]] = {}
    writes = FhirWrites(fhir, slug)
    feed = change_feed(local, fhir, slug, sessions)
    try:
        await feed.__aenter__()
        await writes.open()
        await feeding(writes, receipts)
        for variant in VARIANTS:  # warm-up (connections, the relay's statements)
            for _ in range(5):
                await one_event(variant, slug, redis, key, sessions, receipts, writes)
        writes.write_ms.clear()
        header = f"{'round':>5} {'variant':>7} {'→ xread p50':>12} {'p95':>7} {'→ ws p50':>10}"
        print(f"\n{header} {'p95':>7}")
        for round_ in range(1, args.rounds + 1):
            shift = round_ % len(VARIANTS)
            order = VARIANTS[shift:] + VARIANTS[:shift]
            for variant in order:
                samples = [
                    await one_event(variant, slug, redis, key, sessions, receipts, writes)
                    for _ in range(args.events)
                ]
                xr = [s[0] for s in samples]
                ws = [s[1] for s in samples]
                table.setdefault((variant, "xread"), []).append((pct(xr, 50), pct(xr, 95)))
                table.setdefault((variant, "ws"), []).append((pct(ws, 50), pct(ws, 95)))
                print(
                    f"{round_:>5} {variant:>7} {pct(xr, 50):12.2f} {pct(xr, 95):7.2f} "
                    f"{pct(ws, 50):10.2f} {pct(ws, 95):7.2f}"
                )
        print("\nmedian of round values (min..max), ms:")
        for (variant, to), rows in sorted(table.items()):
            p50 = [r[0] for r in rows]
            p95 = [r[1] for r in rows]
            print(f"  {variant:>6} → {to:<5}  p50 {spread(p50)}   p95 {spread(p95)}")
        print(
            f"  the FHIR create itself (HAPI round trip): p50 {pct(writes.write_ms, 50):.2f}, "
            f"p95 {pct(writes.write_ms, 95):.2f} ms"
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await feed.__aexit__(None, None, None)
        await writes.remove()
        stop.set()
        await relay
        await redis.aclose()
        await reader_redis.aclose()
        await engine.dispose()


# --- memory ----------------------------------------------------------------------------------


async def received_at(socket_: ClientConnection, event_id: str) -> float:
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            message = json.loads(await socket_.recv())
            if message["type"] == "event" and message["event"]["id"] == event_id:
                return time.perf_counter()


async def fan_out(clients: list[ClientConnection], slug: str, local: Settings) -> None:
    """One critical result to every connected clinician of the tenant: until the first, the
    median and the last client has it (the clients share this process's 1 core of 2)."""
    key = events.stream_key(events.EventsSettings(), local.db.app_schema)
    redis = Redis.from_url(local.redis.url.get_secret_value())
    first: list[float] = []
    median: list[float] = []
    last: list[float] = []
    try:
        for _ in range(10):
            event = events.new_event("result.critical", tenant=slug, subject="Patient/bench")
            waiting = [asyncio.create_task(received_at(c, str(event.id))) for c in clients]
            await asyncio.sleep(0.2)  # every reader is waiting
            t0 = time.perf_counter()
            await xadd_events(redis, key, [event.model_dump(mode="json")], maxlen=100_000)
            times = sorted([(t - t0) * 1000 for t in await asyncio.gather(*waiting)])
            first.append(times[0])
            median.append(statistics.median(times))
            last.append(times[-1])
    finally:
        await redis.aclose()
    print(
        f"\nfan-out of one event to {len(clients)} clients of the tenant (10 events), ms: "
        f"first p50 {pct(first, 50):.1f}, median client p50 {pct(median, 50):.1f}, "
        f"last client p50 {pct(last, 50):.1f} / p95 {pct(last, 95):.1f}"
    )


async def hold_clients(
    args: argparse.Namespace,
    token: str,
    ws_url: str,
    pid: int,
    fan_out_to: tuple[str, Settings] | None = None,
) -> int:
    """Connect ``--clients`` idle clients (50 at a time), measure, disconnect them; the RSS."""
    clients: list[ClientConnection] = []
    for start in range(0, args.clients, 50):
        clients.extend(
            await asyncio.gather(
                *(open_client(ws_url, token) for _ in range(min(50, args.clients - start)))
            )
        )
    await asyncio.sleep(2)
    held = rss_kib(pid)
    if fan_out_to is not None:
        await fan_out(clients, *fan_out_to)
    await asyncio.gather(*(c.close() for c in clients))
    await asyncio.sleep(2)
    return held


async def memory(
    args: argparse.Namespace, token: str, ws_url: str, pid: int, slug: str, local: Settings
) -> None:
    warm = await open_client(ws_url, token)
    await warm.close()
    await asyncio.sleep(2)
    idle = rss_kib(pid)
    held = await hold_clients(args, token, ws_url, pid, (slug, local))
    after = rss_kib(pid)
    cycles = []
    for _ in range(args.cycles - 1):
        cycles.append((await hold_clients(args, token, ws_url, pid), rss_kib(pid)))
    n = args.clients
    print(
        f"\nserver VmRSS: idle {idle / 1024:.1f} MiB; with {n} idle WebSocket clients "
        f"{held / 1024:.1f} MiB (+{(held - idle) / 1024:.1f} MiB, "
        f"{(held - idle) / max(1, n):.1f} KiB per client); after they left {after / 1024:.1f} MiB"
    )
    for number, (again, after_again) in enumerate(cycles, start=2):
        print(
            f"  cycle {number}: with {n} clients {again / 1024:.1f} MiB, after they left "
            f"{after_again / 1024:.1f} MiB"
        )


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    print(f"machine: {machine()}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"revision: {revision()}")
    async with bench_schema(settings) as local, FhirClient(local.fhir) as fhir:
        slug, token, partition_id = await physician_token(local, fhir)
        port = free_port()
        with (
            tempfile.TemporaryDirectory() as tmp,
            api_process(local, port, Path(tmp) / "api.log") as process,
        ):
            await wait_ready(f"http://127.0.0.1:{port}", process)
            ws_url = f"ws://127.0.0.1:{port}"
            print(f"API: ehr serve --workers 1 (pid {process.pid}), schema {local.db.app_schema}")
            try:
                await latency(args, local, slug, token, ws_url, fhir)
                await memory(args, token, ws_url, process.pid, slug, local)
            finally:
                await delete_partition(fhir, partition_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=40, help="events per variant per round")
    parser.add_argument("--clients", type=int, default=500, help="idle WebSocket clients")
    parser.add_argument(
        "--cycles", type=int, default=3, help="connect/disconnect cycles (a leak grows each one)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
