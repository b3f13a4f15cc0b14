"""The project-local PostgreSQL cluster (``.stack/pgdata``, 127.0.0.1 only, scram-sha-256).

PostgreSQL refuses to run as root. When we are root, initdb/pg_ctl/psql run as the ``postgres``
system user (``runuser -u postgres --``) and the data directory belongs to it; if that user cannot
traverse to ``.stack`` the cluster is placed under its home directory instead (and we say so).
The cluster's superuser authenticates by peer over a unix socket in a directory only it can
use; everything else (HAPI, the API, tests) connects over TCP as role ``ehr`` with a password.
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import pwd
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ehr.core.config import DEV_DB_PASSWORD
from ehr.devstack.errors import StackError
from ehr.devstack.processes import child_pids, console, log_tail, port_open, process_alive

__all__ = ["APP_DATABASE", "DB_ROLE", "HAPI_DATABASE", "PostgresCluster"]

DB_ROLE = "ehr"
HAPI_DATABASE = "hapi"
APP_DATABASE = "ehr"
# Unix socket paths are limited to 107 bytes; leave room for "/.s.PGSQL.NNNNN".
_MAX_SOCKET_DIR = 90


def _short_hash(path: Path) -> str:
    return hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True)
class PostgresCluster:
    bin_dir: Path
    stack_dir: Path
    port: int

    # --- who runs it and where -------------------------------------------------------------
    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def os_user(self) -> str:
        """The OS user owning the cluster: ``postgres`` when we are root, else ourselves."""
        return "postgres" if self.as_root else getpass.getuser()

    @property
    def superuser(self) -> str:
        return self.os_user

    def _user_can_reach(self, path: Path) -> bool:
        if not self.as_root:
            return True
        result = subprocess.run(
            ["runuser", "-u", self.os_user, "--", "test", "-x", str(path)],  # noqa: S607 - PATH tool
            capture_output=True,
            check=False,
            cwd="/",
        )
        return result.returncode == 0

    @cached_property
    def base_dir(self) -> Path:
        """Where pgdata lives: ``.stack`` if the cluster user can reach it, else its home."""
        if self._user_can_reach(self.stack_dir):
            return self.stack_dir
        home = Path(pwd.getpwnam(self.os_user).pw_dir)
        return home / "ehr-stack" / _short_hash(self.stack_dir)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "logs" / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.base_dir / "pgsock"
        if len(str(preferred)) <= _MAX_SOCKET_DIR:
            return preferred
        return Path("/tmp") / f"ehr-pgsock-{_short_hash(self.stack_dir)}"  # noqa: S108 - 0700, owned

    # --- commands ----------------------------------------------------------------------------
    def _as_cluster_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.os_user, "--", *argv] if self.as_root else argv

    def _run(
        self, argv: list[str], *, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self._as_cluster_user(argv),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",  # the cluster user may not be able to enter our working directory
            start_new_session=True,
        )
        if check and result.returncode != 0:
            raise StackError(
                f"`{shlex.join(argv)}` failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}".rstrip(),
                log_tail=log_tail(self.log_file),
            )
        return result

    def _prepare_dir(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if self.as_root:
            os.chown(path, pwd.getpwnam(self.os_user).pw_uid, pwd.getpwnam(self.os_user).pw_gid)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def running(self) -> bool:
        if not self.initialized():
            return False
        return (
            self._run(
                [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
            ).returncode
            == 0
        )

    def pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    # --- lifecycle ---------------------------------------------------------------------------
    def ensure_running(self) -> bool:
        """Init (once), start (unless running), create role and databases; True if started now."""
        if self.as_root:
            try:
                pwd.getpwnam(self.os_user)
            except KeyError as exc:
                raise StackError(
                    "running as root, but there is no `postgres` system user to run PostgreSQL as "
                    "(PostgreSQL refuses root). Create it (`useradd --system --create-home "
                    "postgres`) or run as a normal user"
                ) from exc
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        self.stack_dir.chmod(0o755)
        if self.base_dir != self.stack_dir:
            console.print(
                f"[yellow]![/] user {self.os_user!r} cannot reach {self.stack_dir}; "
                f"the PostgreSQL cluster lives in {self.data_dir}"
            )
            self._prepare_dir(self.base_dir, 0o700)
        if not self.initialized():
            self._init()
        started = False
        if self.running():
            console.print(
                f"[green]✓[/] PostgreSQL already running on 127.0.0.1:{self.port} (reused)"
            )
        else:
            if port_open(self.port):
                raise StackError(
                    f"port {self.port} is in use by another program, not by this project's cluster "
                    f"({self.data_dir}); stop it or choose another port: EHR_STACK_PG_PORT=…"
                )
            self._start()
            started = True
        self._ensure_role_and_databases()
        return started

    def _init(self) -> None:
        console.print(f"[bold]Initialising PostgreSQL cluster[/] in {self.data_dir}")
        self._prepare_dir(self.data_dir, 0o700)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.superuser,
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )  # fmt: skip

    def _start(self) -> None:
        self._prepare_dir(self.socket_dir, 0o700)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if self.as_root:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        # Statement counts per request (benchmarks/fhir_gateway.py; BEGIN/COMMIT count too),
        # where the library is installed (Debian's postgresql package ships it).
        statements = (
            [
                "-c shared_preload_libraries=pg_stat_statements",
                "-c pg_stat_statements.track_utility=on",
            ]
            if (self.bin_dir.parent / "lib" / "pg_stat_statements.so").is_file()
            else []
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={shlex.quote(str(self.socket_dir))}",
                "-c password_encryption=scram-sha-256",
                "-c max_connections=200",
                *statements,
            ]
        )
        console.print(
            f"[bold]Starting PostgreSQL[/] on 127.0.0.1:{self.port} (log {self.log_file})"
        )
        self._run(
            [
                str(self.bin_dir / "pg_ctl"), "start",
                "-D", str(self.data_dir),
                "-l", str(self.log_file),
                "-w", "-t", "60",
                "-o", options,
            ]
        )  # fmt: skip
        # Dev/test cluster: faster commits, losing the last few on a crash is acceptable. Set in
        # postgresql.auto.conf, not on the command line (which would beat ALTER SYSTEM), so a
        # benchmark can switch the running cluster to production durability and back with
        # ALTER SYSTEM + pg_reload_conf(). Set at every start: a benchmark that died mid-run
        # leaves no lasting change.
        self.psql("ALTER SYSTEM SET synchronous_commit = off;\nSELECT pg_reload_conf();\n")
        console.print(f"[green]✓[/] PostgreSQL ready on 127.0.0.1:{self.port}")

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the cluster superuser over the private unix socket; return stdout."""
        result = self._run(
            [
                str(self.bin_dir / "psql"),
                "-h", str(self.socket_dir),
                "-p", str(self.port),
                "-U", self.superuser,
                "-d", database,
                "-v", "ON_ERROR_STOP=1",
                "-qAt",
                "-f", "-",
            ],
            input_text=sql,
        )  # fmt: skip
        return result.stdout

    def _ensure_role_and_databases(self) -> None:
        password = DEV_DB_PASSWORD.replace("'", "''")
        # Constants only (no outside input) in this SQL.
        sql = f"""
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '{DB_ROLE}')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_ROLE}') \\gexec
ALTER ROLE {DB_ROLE} WITH LOGIN PASSWORD '{password}';
SELECT format('CREATE DATABASE %I OWNER %I', '{HAPI_DATABASE}', '{DB_ROLE}')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{HAPI_DATABASE}') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '{APP_DATABASE}', '{DB_ROLE}')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{APP_DATABASE}') \\gexec
SELECT 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
 WHERE EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_stat_statements')
   AND current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%' \\gexec
"""  # noqa: S608
        self.psql(sql)

    def stop(self) -> bool:
        """Stop the cluster; True when a running one was stopped.

        ``pg_ctl stop -m fast`` (roll back sessions, checkpoint); if that does not finish in time,
        ``-m immediate``; if the postmaster still lives, SIGKILL it and its children (the next
        start runs crash recovery, which is fine for a dev/test cluster).
        """
        if not self.running():
            return False
        console.print("Stopping PostgreSQL…")
        for mode, timeout in (("fast", 60), ("immediate", 15)):
            result = self._run(
                [
                    str(self.bin_dir / "pg_ctl"), "stop",
                    "-D", str(self.data_dir),
                    "-m", mode,
                    "-w", "-t", str(timeout),
                ],
                check=False,
            )  # fmt: skip
            if result.returncode == 0 or not self.running():
                return True
            console.print(
                f"[yellow]![/] `pg_ctl stop -m {mode}` did not stop PostgreSQL "
                f"({(result.stdout + result.stderr).strip() or f'exit {result.returncode}'})"
            )
        postmaster = self.pid()
        if postmaster is not None and process_alive(postmaster):
            console.print(f"[yellow]![/] sending SIGKILL to the postmaster (pid {postmaster})")
            children = child_pids(postmaster)
            for pid in [postmaster, *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(
                process_alive(pid) for pid in [postmaster, *children]
            ):
                time.sleep(0.2)
            # Not `pg_ctl status`: it counts a killed postmaster that is not reaped yet (a zombie).
            if not any(process_alive(pid) for pid in [postmaster, *children]):
                return True
        elif not self.running():
            return True
        raise StackError(
            f"PostgreSQL ({self.data_dir}) did not stop", log_tail=log_tail(self.log_file)
        )
