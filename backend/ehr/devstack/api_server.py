"""The API (uvicorn, ``ehr.entrypoints.api:create_app`` factory) in the background for ``ehr stack
up``."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ehr.devstack.errors import StackError
from ehr.devstack.processes import (
    ManagedProcess,
    console,
    listening_pids,
    port_open,
    process_cwd,
    process_identity,
    terminate,
    wait_until,
)

__all__ = ["ApiServer"]

APP_FACTORY = "ehr.entrypoints.api:create_app"
# uvicorn waits for open connections on SIGTERM (a streaming export, a wedged request): after
# this long it gets SIGKILL.
STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ApiServer:
    repo_root: Path
    stack_dir: Path
    port: int
    timeout_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="API",
            pid_file=self.stack_dir / "run" / "api.pid",
            log_file=self.stack_dir / "logs" / "api.log",
            marker=APP_FACTORY,
        )

    def ready(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/ready", timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def code_changed_since_start(self) -> bool:
        """True when a file of the ``ehr`` package is newer than the running API."""
        try:
            started = self.process.pid_file.stat().st_mtime
        except OSError:
            return False
        package = Path(__file__).resolve().parents[1]
        return any(path.stat().st_mtime > started for path in package.rglob("*.py"))

    def start(self, *, env: Mapping[str, str]) -> bool:
        """Start uvicorn unless ours runs current code and is ready; wait for /ready.

        An API of ours that runs but does not get ready (hung, wedged in start-up, or an
        orphan of this checkout holding the port without a pid file) is replaced rather than
        waited on. True when a process was started now.
        """
        if self.process.running():
            pid = self.process.pid()
            if self.code_changed_since_start():
                console.print("The backend code changed since the API started: restarting it")
                self.stop()
            elif self._gets_ready(budget=self.timeout_seconds - self.process.age()):
                console.print(f"[green]✓[/] API already running on {self.base_url} (reused)")
                return False
            else:
                console.print(
                    f"[yellow]![/] the API (pid {pid}) runs but {self.base_url}/ready does not "
                    "answer 200: replacing it"
                )
                self.stop()
        self._free_port()
        console.print(f"[bold]Starting the API[/] on {self.base_url} (log {self.process.log_file})")
        self.process.start(
            [
                sys.executable, "-m", "uvicorn", APP_FACTORY, "--factory",
                "--host", "127.0.0.1", "--port", str(self.port),
            ],
            env=env,
            cwd=self.repo_root,
        )  # fmt: skip
        wait_until(
            f"API ({self.base_url}/ready)",
            self.ready,
            timeout=self.timeout_seconds,
            alive=self.process.running,
            log_file=self.process.log_file,
            interval=0.5,
        )
        return True

    def _gets_ready(self, *, budget: float) -> bool:
        """True when /ready answers 200 within ``budget`` s (probed at least once).

        A process still inside its start-up window gets the rest of it; an older one gets one
        probe.
        """
        deadline = time.monotonic() + max(0.0, budget)
        while True:
            if self.ready():
                return True
            if time.monotonic() >= deadline or not self.process.running():
                return False
            time.sleep(0.5)

    def _free_port(self) -> None:
        """Make sure nothing listens on the port: replace a hung orphan API of this checkout.

        An orphan is our uvicorn (``ehr.entrypoints.api:create_app``) started from this repository
        whose pid
        file is gone. If it answers /ready it is somebody's working server: refuse, naming it.
        """
        if not port_open(self.port):
            return
        holders = listening_pids(self.port)
        ours = [
            pid
            for pid in holders
            if APP_FACTORY in process_identity(pid) and process_cwd(pid) == self.repo_root
        ]
        if ours and len(ours) == len(holders) and not self.ready():
            for pid in ours:
                console.print(
                    f"[yellow]![/] an API of this checkout (pid {pid}, no pid file) holds port "
                    f"{self.port} and is not ready: stopping it"
                )
                terminate("API", pid, timeout=STOP_TIMEOUT_SECONDS)
            deadline = time.monotonic() + 5
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not port_open(self.port):
                return
        who = f" (pid {', '.join(map(str, holders))})" if holders else ""
        kind = "an API not started by the devstack" if ours else "another program"
        raise StackError(
            f"port {self.port} is in use by {kind}{who}; stop it or choose another port: "
            "EHR_STACK_API_PORT=…"
        )

    def stop(self) -> bool:
        """Stop the API (SIGTERM, SIGKILL after STOP_TIMEOUT_SECONDS); True when one stopped."""
        if not self.process.running():
            return False
        console.print("Stopping the API…")
        return self.process.stop(timeout=STOP_TIMEOUT_SECONDS)
