"""The background-job worker (``ehr worker``, ADR 0024) in the background for ``ehr stack up``.

Managed like the API: a session leader with a pid file and a log under ``.stack``, ready when
its ``/health`` (``EHR_JOBS__HEALTH_PORT``, the stack's ``EHR_STACK_WORKER_PORT``) answers 200,
replaced when the backend's code changed since it started, stopped with SIGTERM (it releases or
finishes its running jobs within ``EHR_JOBS__SHUTDOWN_GRACE_SECONDS``) and SIGKILL after
:data:`STOP_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from ehr.devstack.processes import ManagedProcess, console, port_open, wait_until

__all__ = ["NOTIFY_URL_SETTING", "WORKER_COMMAND", "WorkerServer", "notify_url"]

# What the worker's command line holds (the pid file is believed only then).
WORKER_COMMAND: Final = ("-m", "ehr.entrypoints.cli", "worker")
MARKER: Final = "ehr.entrypoints.cli worker"
# Where HAPI's subscriptions send notifications: the worker's port (ehr.platform.fhir_changes).
NOTIFY_URL_SETTING: Final = "EHR_FHIR_CHANGES__NOTIFY_URL"


def notify_url(port: int) -> str:
    """The worker's notification URL on this machine."""
    return f"http://127.0.0.1:{port}/internal/fhir-notifications"


# Above the worker's own grace for running jobs (25 s by default).
STOP_TIMEOUT_SECONDS: Final = 40.0


@dataclass(frozen=True)
class WorkerServer:
    repo_root: Path
    stack_dir: Path
    port: int
    timeout_seconds: float

    @property
    def port_file(self) -> Path:
        return self.stack_dir / "run" / "worker.port"

    def current_port(self) -> int:
        """The port of the running worker (it may have moved off a busy configured one)."""
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return self.port

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.current_port()}/health"

    def _free_port(self) -> int:
        """The configured port, or the next free one when another program holds it (another
        checkout's stack on this machine): the worker's port is only its health check."""
        port = self.port
        while port_open(port) and port < self.port + 100:
            port += 1
        return port

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="worker",
            pid_file=self.stack_dir / "run" / "worker.pid",
            log_file=self.stack_dir / "logs" / "worker.log",
            marker=MARKER,
        )

    def env(self, base: Mapping[str, str], port: int) -> dict[str, str]:
        """The worker's environment: the stack's, with its health port (where HAPI's
        subscriptions notify it, unless the user set the notify URL)."""
        env = {**base, "EHR_JOBS__HEALTH_PORT": str(port)}
        if NOTIFY_URL_SETTING not in os.environ:
            env[NOTIFY_URL_SETTING] = notify_url(port)
        return env

    def argv(self) -> list[str]:
        return [sys.executable, *WORKER_COMMAND]

    def ready(self) -> bool:
        try:
            response = httpx.get(self.health_url, timeout=3.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def code_changed_since_start(self) -> bool:
        """True when a file of the ``ehr`` package is newer than the running worker."""
        started = self.process.started_at()
        if started is None:
            return False
        package = Path(__file__).resolve().parents[1]
        return any(path.stat().st_mtime > started for path in package.rglob("*.py"))

    def start(self, *, env: Mapping[str, str]) -> bool:
        """Start the worker unless ours runs current code and is healthy; wait for /health.
        True when a process was started now."""
        if self.process.running():
            if not self.code_changed_since_start() and self.ready():
                console.print(
                    f"[green]✓[/] {self.process.name} already running ({self.health_url}; reused)"
                )
                return False
            console.print(f"Restarting the {self.process.name} (code changed, or not healthy)")
            self.stop()
        port = self._free_port()
        self.port_file.parent.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(f"{port}\n")
        console.print(f"[bold]Starting the {self.process.name}[/] (log {self.process.log_file})")
        self.process.start(self.argv(), env=self.env(env, port), cwd=self.repo_root)
        wait_until(
            f"{self.process.name} ({self.health_url})",
            self.ready,
            timeout=self.timeout_seconds,
            alive=self.process.running,
            log_file=self.process.log_file,
            interval=0.5,
        )
        return True

    def stop(self) -> bool:
        """SIGTERM (running jobs finish or are released), SIGKILL after STOP_TIMEOUT_SECONDS."""
        if not self.process.running():
            return False
        console.print(f"Stopping the {self.process.name}…")
        stopped = self.process.stop(timeout=STOP_TIMEOUT_SECONDS)
        self.port_file.unlink(missing_ok=True)
        return stopped
