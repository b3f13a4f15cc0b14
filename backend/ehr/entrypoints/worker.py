"""``ehr worker``: the process that runs background jobs (ADR 0024).

One asyncio process: procrastinate's worker on the app schema's queue (``EHR_JOBS__CONCURRENCY``
jobs at once, LISTEN/NOTIFY for new jobs, a heartbeat row every ``EHR_JOBS__HEARTBEAT_SECONDS``,
the periodic jobs' deferrer), the recovery of jobs whose worker died (at start and every
``EHR_JOBS__SWEEP_SECONDS``), a small HTTP port (``EHR_JOBS__HEALTH_PORT``) with ``/health``
(200 once the worker is registered in the queue, else 503), ``/metrics`` and HAPI's
subscription notifications (``ehr.platform.fhir_changes``, ADR 0027; every tenant's
subscriptions are repaired at start), and the domain events' relay and consumers.

SIGTERM/SIGINT: no new job is taken; running jobs get ``EHR_JOBS__SHUTDOWN_GRACE_SECONDS`` to
finish, then are released (back in the queue at once) and the process exits 0. A second
signal does not kill faster: SIGKILL does, and then the heartbeat's absence recovers the jobs.

The composition root of the worker: :data:`WORKER_JOBS` lists every job definition it runs (the
platform's own and each module's ``JOBS``); ``--jobs-from MODULE`` adds a module's ``JOBS``
(tests, a deployment's own jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import procrastinate
import structlog
from aiohttp import web
from procrastinate.exceptions import ConnectorException
from procrastinate.worker import Worker
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.errors import AppError
from ehr.fhir import FhirClient
from ehr.modules import hl7v2, pharmacy
from ehr.platform import events, fhir_changes, webhooks
from ehr.platform.jobs import BUILTIN_JOBS, JobDefinition, JobRegistry, JobsSettings
from ehr.platform.jobs.runtime import build_queue_app, count_queue, recover_stalled

__all__ = [
    "WORKER_HANDLERS",
    "WORKER_JOBS",
    "WorkerState",
    "event_runners",
    "load_jobs",
    "serve_worker",
]

logger = structlog.get_logger(__name__)

# Every job definition the worker runs. A module with jobs adds its ``JOBS`` here.
WORKER_JOBS: Final[tuple[JobDefinition, ...]] = (
    *BUILTIN_JOBS,
    *events.EVENT_JOBS,
    *webhooks.JOBS,
    *hl7v2.JOBS,
    *pharmacy.JOBS,
)

# Every domain-event handler the worker's consumers run (ADR 0023). A module adds its own here.
WORKER_HANDLERS: Final[tuple[events.EventHandler, ...]] = (
    *webhooks.HANDLERS,
    *hl7v2.HANDLERS,
    *pharmacy.HANDLERS,
)

EventRunner = Callable[..., Coroutine[Any, Any, Any]]


def load_jobs(modules: Iterable[str]) -> list[JobDefinition]:
    """The ``JOBS`` of each named module (``--jobs-from``)."""
    found: list[JobDefinition] = []
    for name in modules:
        module = importlib.import_module(name)
        jobs = getattr(module, "JOBS", None)
        if not isinstance(jobs, Sequence) or not all(isinstance(j, JobDefinition) for j in jobs):
            raise SystemExit(f"ehr worker: {name}.JOBS is not a sequence of job definitions")
        found.extend(jobs)
    return found


def event_runners() -> list[EventRunner]:
    """The events relay (outbox → Redis stream) and the consumers of :data:`WORKER_HANDLERS`,
    each run as ``run(settings, stop=...)`` beside the job runner."""

    async def consumers(settings: Settings, *, stop: asyncio.Event) -> None:
        await events.run_consumers(settings, WORKER_HANDLERS, stop=stop)

    consumers.__name__ = "run_consumers"
    return [events.run_relay, consumers]


@dataclass
class WorkerState:
    """What /health reports."""

    worker: Worker | None = None
    last_sweep_ok: bool = False
    queue: dict[str, int] = field(default_factory=dict)

    def ready(self) -> bool:
        return self.worker is not None and self.worker.worker_id is not None and self.last_sweep_ok

    def document(self) -> dict[str, Any]:
        worker = self.worker
        return {
            "status": "ok" if self.ready() else "starting",
            "worker_id": worker.worker_id if worker is not None else None,
            "running_jobs": len(worker._running_jobs) if worker is not None else 0,
            "queue": self.queue,
        }


async def _health_server(
    state: WorkerState,
    host: str,
    port: int,
    *,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> web.AppRunner:
    async def health(_request: web.Request) -> web.Response:
        return web.json_response(state.document(), status=200 if state.ready() else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    http = web.Application(client_max_size=settings.fhir_changes.max_body_bytes)
    http.router.add_get("/health", health)
    http.router.add_get("/metrics", metrics)
    if settings.fhir_changes.enabled:
        fhir_changes.add_notification_routes(http, sessions, settings)
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _repair_subscriptions(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event
) -> None:
    """Every active tenant's HAPI subscriptions made right once (ADR 0027), retried with
    backoff while HAPI or PostgreSQL is not there yet."""
    delay = 1.0
    async with FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir:
        while not stop.is_set():
            try:
                repaired = await fhir_changes.repair_all(sessions, fhir, settings)
            except (AppError, SQLAlchemyError, OSError) as exc:
                logger.warning("fhir_changes.repair.retrying", error=type(exc).__name__)
            else:
                logger.info(
                    "fhir_changes.repair.done",
                    tenants=len(repaired),
                    changed=sum(1 for r in repaired.values() if r.changed),
                )
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 60.0)


async def _sweep(
    app: procrastinate.App, state: WorkerState, jobs: JobsSettings, stop: asyncio.Event
) -> None:
    """Recover stalled jobs and count the queue: now, then every ``sweep_seconds``."""
    while not stop.is_set():
        try:
            await recover_stalled(app, stalled_after_seconds=jobs.stalled_after_seconds)
            state.queue = await count_queue(app)
            state.last_sweep_ok = True
        except (ConnectorException, SQLAlchemyError, OSError) as exc:  # the database is down
            state.last_sweep_ok = False
            logger.error("jobs.sweep.failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=jobs.sweep_seconds)


async def serve_worker(
    settings: Settings,
    jobs: JobsSettings,
    definitions: Iterable[JobDefinition],
    *,
    stop: asyncio.Event | None = None,
    install_signals: bool = True,
) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT); release or finish running jobs; return."""
    stop = stop or asyncio.Event()
    registry = JobRegistry(definitions)
    engine = create_engine(settings.db)
    sessionmaker = create_sessionmaker(engine)
    app = build_queue_app(settings.db, registry, sessionmaker, pool_size=jobs.concurrency + 4)
    state = WorkerState()
    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    try:
        async with app.open_async():
            if not await app.check_connection_async():
                raise SystemExit("ehr worker: the job queue's schema is missing; run `ehr migrate`")
            worker = Worker(
                app,
                queues=jobs.queues or None,
                name="ehr-worker",
                concurrency=jobs.concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=jobs.heartbeat_seconds,
                stalled_worker_timeout=jobs.stalled_after_seconds,
                shutdown_graceful_timeout=jobs.shutdown_grace_seconds,
            )
            state.worker = worker
            if jobs.health_port:
                runner = await _health_server(
                    state,
                    jobs.health_host,
                    jobs.health_port,
                    settings=settings,
                    sessions=sessionmaker,
                )
            tasks = [
                asyncio.create_task(
                    worker.run(),  # type: ignore[no-untyped-call]
                    name="procrastinate worker",
                ),
                asyncio.create_task(_sweep(app, state, jobs, stop), name="stalled-job sweep"),
            ]
            tasks += [
                asyncio.create_task(run(settings, stop=stop), name=run.__name__)
                for run in event_runners()
            ]
            if settings.fhir_changes.enabled:
                tasks.append(
                    asyncio.create_task(
                        _repair_subscriptions(settings, sessionmaker, stop),
                        name="subscription repair",
                    )
                )
            logger.info(
                "jobs.worker.started",
                kinds=registry.kinds(),
                concurrency=jobs.concurrency,
                queues=jobs.queues or "all",
                health_port=jobs.health_port or None,
            )
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([stopping, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            logger.info("jobs.worker.stopping")
            stop.set()
            worker.stop()  # type: ignore[no-untyped-call]
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for task, outcome in zip(tasks, results, strict=True):
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, asyncio.CancelledError
                ):
                    logger.error(
                        "jobs.worker.task_failed", task=task.get_name(), error=repr(outcome)
                    )
    finally:
        if runner is not None:
            await runner.cleanup()
        await engine.dispose()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    logger.info("jobs.worker.stopped")
