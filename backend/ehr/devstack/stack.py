"""The whole local stack: PostgreSQL, Redis, HAPI, migrations, seed data, API, job worker,
HL7 v2 listener.

Used by the ``ehr stack`` CLI and directly by tests::

    stack = Stack.from_settings()
    stack.stop_hapi()
    stack.start_hapi(wait=True)
    assert stack.hapi_running()
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import SecretStr
from rich.table import Table

from ehr.core.config import DEMO_PASSWORD, DEMO_TENANT, DEV_DB_PASSWORD, Settings
from ehr.devstack import toolchain
from ehr.devstack.api_server import ApiServer
from ehr.devstack.errors import StackError
from ehr.devstack.hapi_server import Datasource, HapiServer
from ehr.devstack.hl7_listener_server import Hl7ListenerServer
from ehr.devstack.postgres_cluster import (
    APP_DATABASE,
    DB_ROLE,
    HAPI_DATABASE,
    PostgresCluster,
)
from ehr.devstack.processes import console, port_open, process_alive
from ehr.devstack.redis_server import RedisServer, redis_ping
from ehr.devstack.settings import StackSettings
from ehr.devstack.worker_server import NOTIFY_URL_SETTING, WorkerServer, notify_url

__all__ = ["SERVICES", "ServiceStatus", "Stack"]

SERVICES = ("postgres", "redis", "hapi", "api", "worker", "hl7")
# The backend's public origin (ehr.core.config.GatewaySettings.public_base_url); the CDS Hooks `aud`
# defaults to it.
PUBLIC_BASE_URL_SETTING = "EHR_GATEWAY__PUBLIC_BASE_URL"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "running", "stopped", "external", "running (not started by the devstack)"
    address: str
    pid: int | None
    log: Path | None


def _replace_path(url: str, *, scheme: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        (
            scheme or parts.scheme,
            parts.netloc,
            parts.path if path is None else path,
            parts.query,
            "",
        )
    )


@dataclass(frozen=True)
class Stack:
    """The project-local stack described by :class:`StackSettings`."""

    settings: StackSettings
    root: Path
    dir: Path

    @classmethod
    def from_settings(cls, settings: StackSettings | None = None) -> Stack:
        settings = settings or StackSettings()
        return cls(settings=settings, root=settings.repo_root(), dir=settings.stack_dir())

    # --- the services ------------------------------------------------------------------------
    @property
    def external_database(self) -> str | None:
        url = self.settings.database_url
        return url.get_secret_value() if url is not None else None

    @property
    def external_redis(self) -> str | None:
        url = self.settings.redis_url
        return url.get_secret_value() if url is not None else None

    def postgres(self, *, install: bool = False) -> PostgresCluster | None:
        """The local cluster (None when DATABASE_URL is set or no binaries and ``install`` off)."""
        if self.external_database is not None:
            return None
        bin_dir = toolchain.require_postgres_bin() if install else toolchain.find_postgres_bin()
        if bin_dir is None:
            return None
        return PostgresCluster(bin_dir=bin_dir, stack_dir=self.dir, port=self.settings.pg_port)

    def redis(self, *, install: bool = False) -> RedisServer | None:
        if self.external_redis is not None:
            return None
        server = toolchain.require_redis_server() if install else toolchain.find_redis_server()
        if server is None:
            return None
        return RedisServer(server_bin=server, stack_dir=self.dir, port=self.settings.redis_port)

    @property
    def hapi(self) -> HapiServer:
        return HapiServer(
            repo_root=self.root,
            stack_dir=self.dir,
            port=self.settings.hapi_port,
            xmx=self.settings.hapi_xmx,
            timeout_seconds=self.settings.hapi_timeout_seconds,
        )

    @property
    def api(self) -> ApiServer:
        return ApiServer(
            repo_root=self.root,
            stack_dir=self.dir,
            port=self.settings.api_port,
            timeout_seconds=self.settings.api_timeout_seconds,
        )

    @property
    def worker(self) -> WorkerServer:
        return WorkerServer(
            repo_root=self.root,
            stack_dir=self.dir,
            port=self.settings.worker_port,
            timeout_seconds=self.settings.worker_timeout_seconds,
        )

    @property
    def hl7_listener(self) -> Hl7ListenerServer:
        return Hl7ListenerServer(
            repo_root=self.root,
            stack_dir=self.dir,
            port=self.settings.hl7_health_port,
            timeout_seconds=self.settings.worker_timeout_seconds,
            mllp_port=self.settings.hl7_port,
        )

    def start_worker(self) -> None:
        """Start (or reuse) the job worker on the stack's database; wait for its /health.

        Callable alone (``ehr stack up --only worker``): the database must be migrated."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.worker.start(env=self.child_env())

    def stop_worker(self) -> None:
        self.worker.stop()

    def start_hl7_listener(self) -> None:
        """Start (or reuse) the HL7 v2 MLLP listener; wait for its /health."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hl7_listener.start(env=self.child_env())

    # --- addresses handed to the backend ---------------------------------------------------
    def database_url(self) -> str:
        """``EHR_DB__URL`` for the backend (asyncpg driver, database ``ehr``)."""
        external = self.external_database
        if external is not None:
            return _replace_path(external, scheme="postgresql+asyncpg")
        password = quote(DEV_DB_PASSWORD, safe="")
        return (
            f"postgresql+asyncpg://{DB_ROLE}:{password}@127.0.0.1:{self.settings.pg_port}/"
            f"{APP_DATABASE}"
        )

    def redis_url(self) -> str:
        return self.external_redis or f"redis://127.0.0.1:{self.settings.redis_port}/0"

    def datasource(self) -> Datasource:
        """HAPI's JDBC datasource: database ``hapi`` on the same server as the app database."""
        external = self.external_database
        if external is None:
            return Datasource(
                jdbc_url=f"jdbc:postgresql://127.0.0.1:{self.settings.pg_port}/{HAPI_DATABASE}",
                username=DB_ROLE,
                password=DEV_DB_PASSWORD,
            )
        parts = urlsplit(external)
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        query = f"?{parts.query}" if parts.query else ""
        return Datasource(
            jdbc_url=f"jdbc:postgresql://{host}:{parts.port or 5432}/{HAPI_DATABASE}{query}",
            username=unquote(parts.username or DB_ROLE),
            password=unquote(parts.password or ""),
        )

    def service_env(self) -> dict[str, str]:
        """The ``EHR_*`` settings that point the backend (API, migrations, seed, tests) here.

        The public base URL (FHIR gateway links, SMART endpoints, the CDS Hooks ``aud``, which
        defaults to it) is the API this stack serves, ``http://127.0.0.1:{EHR_STACK_API_PORT}``,
        unless the user set ``EHR_GATEWAY__PUBLIC_BASE_URL`` (environment or ``.env``).
        """
        env = {
            "EHR_DB__URL": self.database_url(),
            "EHR_REDIS__URL": self.redis_url(),
            "EHR_FHIR__BASE_URL": self.hapi.base_url,
        }
        if not self._set_by_user(PUBLIC_BASE_URL_SETTING):
            env[PUBLIC_BASE_URL_SETTING] = self.api.base_url
        if not self._set_by_user(NOTIFY_URL_SETTING):
            # HAPI's subscriptions notify the worker's port (ADR 0027).
            env[NOTIFY_URL_SETTING] = notify_url(self.worker.current_port())
        return env

    def _set_by_user(self, name: str) -> bool:
        """True when ``name`` is in the environment or a ``.env`` the backend reads (any case)."""
        wanted = name.lower()
        if any(key.lower() == wanted for key in os.environ):
            return True
        # The API runs in the repository root; `ehr stack run` commands in the caller's cwd.
        for env_file in {self.root / ".env", Path.cwd() / ".env"}:
            if env_file.is_file() and any(key.lower() == wanted for key in dotenv_values(env_file)):
                return True
        return False

    def child_env(self) -> dict[str, str]:
        return {**os.environ, **self.service_env()}

    # --- public API for tests ----------------------------------------------------------------
    def hapi_running(self) -> bool:
        """True when HAPI answers ``GET /fhir/DEFAULT/metadata`` with 200."""
        return self.hapi.answering()

    def stop_hapi(self) -> None:
        """Stop the devstack's HAPI process (group) and check the port is closed."""
        hapi = self.hapi
        if not hapi.process.running():
            if hapi.answering():
                raise StackError(
                    f"HAPI on port {hapi.port} was not started by the devstack "
                    f"(no live {hapi.process.pid_file}); not stopping somebody else's server"
                )
            return
        hapi.stop()
        deadline = time.monotonic() + 10
        while port_open(hapi.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if port_open(hapi.port):
            raise StackError(f"HAPI stopped but port {hapi.port} still accepts connections")

    def start_hapi(self, *, wait: bool = True) -> None:
        """Start HAPI (building the jar if stale) against the stack's database; wait if asked."""
        java, mvn = toolchain.require_java_and_maven()
        hapi = self.hapi
        if not hapi.answering() and not hapi.process.running():
            hapi.build_if_stale(mvn)
        hapi.start(java, self.datasource(), env=self.child_env(), wait=wait)

    def wait_for_hapi(self) -> None:
        self.hapi.wait()

    # --- lifecycle ---------------------------------------------------------------------------
    def start_postgres(self) -> None:
        cluster = self.postgres(install=True)
        if cluster is None:
            console.print("[green]✓[/] PostgreSQL: using DATABASE_URL (nothing started)")
            return
        cluster.ensure_running()

    def start_redis(self) -> None:
        server = self.redis(install=True)
        if server is None:
            console.print("[green]✓[/] Redis: using REDIS_URL (nothing started)")
            return
        server.ensure_running()

    def migrate(self) -> None:
        """The backend's migrations (``ehr.core.db.migrate``) against the stack's database."""
        console.print("[bold]Running database migrations[/] (app schema to head)")
        try:
            from ehr.core.db.migrate import migrate as run_migrations
        except ImportError:  # a checkout without the Python entry point: Alembic's CLI
            ini = self.root / "alembic.ini"
            self._run_backend([sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"])
        else:
            settings = Settings()
            db = settings.db.model_copy(update={"url": SecretStr(self.database_url())})
            run_migrations(settings.model_copy(update={"db": db}))
        console.print("[green]✓[/] database migrated")

    def seed(self) -> None:
        """``ehr seed``: the demo tenant (one user per role) and its synthetic patients."""
        console.print("[bold]Loading demo data[/] (ehr seed: tenant demo, one user per role)")
        script = Path(sys.executable).parent / "ehr"
        argv = [str(script)] if script.is_file() else [sys.executable, "-m", "ehr.entrypoints.cli"]
        self._run_backend([*argv, "seed"])
        console.print("[green]✓[/] demo data loaded")

        body = (
            f'{{"tenant": "{DEMO_TENANT}", "username": "demo.physician", '
            f'"password": "{DEMO_PASSWORD}"}}'
        )
        console.print(
            "[bold]Log in[/] (development only): POST "
            f"{self.api.base_url}/api/auth/login with JSON {body}\n"
            "  users: demo.physician, demo.nurse, demo.pharmacist, demo.pharmacy_technician, "
            "demo.lab_technician, "
            "demo.front_desk, demo.billing, demo.admin, demo.patient (same password)\n"
            "  then call the API with 'Authorization: Bearer <access_token>'",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )

    def _run_backend(self, argv: Sequence[str]) -> None:
        result = subprocess.run(list(argv), env=self.child_env(), cwd=self.root, check=False)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(argv)}` failed (exit {result.returncode})")

    def up(
        self,
        *,
        api: bool = True,
        seed: bool = True,
        worker: bool = True,
        only: Iterable[str] | None = None,
    ) -> None:
        """Start what is missing, reuse what runs. ``only`` limits it to some services.

        The job worker starts after the migrations (with or without the API: ``make test``'s
        ``--no-api`` stack runs jobs too) unless ``worker`` is off."""
        wanted = set(only) if only is not None else set(SERVICES)
        unknown = wanted - set(SERVICES)
        if unknown:
            raise StackError(f"unknown service(s) {sorted(unknown)}; choose from {SERVICES}")
        full = only is None
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        if "postgres" in wanted:
            self.start_postgres()
        if "redis" in wanted:
            self.start_redis()
        if "hapi" in wanted:
            self.start_hapi(wait=True)
        if full:
            self.migrate()
            if seed:
                self.seed()
        if "api" in wanted and api:
            self.api.start(env=self.child_env())
        if "worker" in wanted and worker:
            self.start_worker()
        if "hl7" in wanted and worker:
            # The MLLP listener stores messages; the worker converts them (with it or not at all).
            self.start_hl7_listener()

    def down(self) -> None:
        """Stop the worker, API, HAPI, Redis and PostgreSQL the devstack started; verify they
        are gone."""
        self.hl7_listener.stop()
        self.worker.stop()
        self.api.stop()
        hapi = self.hapi
        hapi.stop()
        redis = self.redis()
        if redis is not None:
            redis.stop()
        cluster = self.postgres()
        postmaster = cluster.pid() if cluster is not None and cluster.running() else None
        if cluster is not None:
            cluster.stop()
        leftovers = []
        if self.hl7_listener.process.running():
            leftovers.append("HL7 listener")
        if self.worker.process.running():
            leftovers.append("worker")
        if self.api.process.running():
            leftovers.append("API")
        if hapi.process.running():
            leftovers.append("HAPI")
        if redis is not None and redis.running():
            leftovers.append("Redis")
        # A killed postmaster may linger as a zombie until init reaps it: `pg_ctl status` would
        # count it, process_alive does not.
        if cluster is not None and (
            process_alive(postmaster) if postmaster is not None else cluster.running()
        ):
            leftovers.append("PostgreSQL")
        if leftovers:
            raise StackError(f"still running after stop: {', '.join(leftovers)}")
        console.print("[green]✓[/] stack stopped (no devstack process left)")

    def clean(self) -> None:
        """Stop everything and delete the stack's state (databases, logs)."""
        self.down()
        cluster = self.postgres()
        targets = [self.dir]
        if cluster is not None and cluster.base_dir != self.dir:
            targets.append(cluster.base_dir)
        for target in targets:
            if target.exists():
                shutil.rmtree(target)
                console.print(f"removed {target}")

    # --- reporting ---------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        rows: list[ServiceStatus] = []
        cluster = self.postgres()
        if self.external_database is not None:
            rows.append(ServiceStatus("postgres", "external", "DATABASE_URL", None, None))
        elif cluster is None:
            rows.append(ServiceStatus("postgres", "not installed", "", None, None))
        else:
            running = cluster.running()
            rows.append(
                ServiceStatus(
                    "postgres",
                    "running" if running else "stopped",
                    f"127.0.0.1:{cluster.port}",
                    cluster.pid() if running else None,
                    cluster.log_file,
                )
            )
        redis = self.redis()
        if self.external_redis is not None:
            rows.append(ServiceStatus("redis", "external", "REDIS_URL", None, None))
        else:
            port = self.settings.redis_port
            pid = redis.process.pid() if redis is not None else None
            state = "running" if pid else "stopped"
            if pid is None and redis_ping(port):
                state = "running (not started by the devstack)"
            log = redis.process.log_file if redis is not None else None
            rows.append(ServiceStatus("redis", state, f"127.0.0.1:{port}", pid, log))
        hapi = self.hapi
        pid = hapi.process.pid()
        answering = hapi.answering()
        if pid and answering:
            state = "running"
        elif pid:
            state = "starting (not answering yet)"
        elif answering:
            state = "running (not started by the devstack)"
        else:
            state = "stopped"
        rows.append(ServiceStatus("hapi", state, hapi.base_url, pid, hapi.process.log_file))
        api = self.api
        pid = api.process.pid()
        state = ("running" if api.ready() else "running (not ready)") if pid else "stopped"
        rows.append(ServiceStatus("api", state, api.base_url, pid, api.process.log_file))
        worker = self.worker
        pid = worker.process.pid()
        state = ("running" if worker.ready() else "running (not healthy)") if pid else "stopped"
        rows.append(ServiceStatus("worker", state, worker.health_url, pid, worker.process.log_file))
        listener = self.hl7_listener
        pid = listener.process.pid()
        state = ("running" if listener.ready() else "running (not healthy)") if pid else "stopped"
        address = f"mllp://127.0.0.1:{listener.mllp_port}"
        rows.append(ServiceStatus("hl7", state, address, pid, listener.process.log_file))
        return rows

    def status_table(self) -> Table:
        table = Table(title="ehr local stack")
        for column in ("service", "state", "address", "pid", "log"):
            table.add_column(column)
        for row in self.status():
            colour = "green" if row.state.startswith(("running", "external")) else "yellow"
            table.add_row(
                row.name,
                f"[{colour}]{row.state}[/]",
                row.address,
                str(row.pid or ""),
                self._short(row.log),
            )
        return table

    def _short(self, path: Path | None) -> str:
        if path is None:
            return ""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def where_to_go(self, *, api: bool) -> Table:
        table = Table(title="Where to go", show_header=False)
        table.add_column("what")
        table.add_column("url")
        if api:
            base = self.api.base_url
            table.add_row("API docs (OpenAPI)", f"{base}/docs")
            table.add_row("readiness", f"{base}/ready")
            table.add_row("metrics", f"{base}/metrics")
        table.add_row("job worker (health, metrics)", self.worker.health_url)
        listener = self.hl7_listener
        table.add_row(
            "HL7 v2 over MLLP (ehr hl7 send FILE)",
            f"127.0.0.1:{listener.mllp_port} (health {listener.health_url})",
        )
        table.add_row("HAPI FHIR base (developers)", f"{self.hapi.base_url}/DEFAULT")
        table.add_row("logs", str(self.dir / "logs"))
        table.add_row("stop everything", "make down")
        return table
