"""The API (uvicorn, ``ehr.main:create_app`` factory) in the background for ``ehr stack up``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ehr.devstack.errors import StackError
from ehr.devstack.processes import ManagedProcess, console, port_open, wait_until

__all__ = ["ApiServer"]

APP_FACTORY = "ehr.main:create_app"


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
        """Start uvicorn unless ours runs current code; wait for /ready; True when started now."""
        if self.process.running() and self.code_changed_since_start():
            console.print("The backend code changed since the API started: restarting it")
            self.stop()
        if self.process.running():
            console.print(f"[green]✓[/] API already running on {self.base_url} (reused)")
        else:
            if port_open(self.port):
                raise StackError(
                    f"port {self.port} is in use by another program; stop it or choose another "
                    "port: EHR_STACK_API_PORT=…"
                )
            console.print(
                f"[bold]Starting the API[/] on {self.base_url} (log {self.process.log_file})"
            )
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

    def stop(self) -> bool:
        if not self.process.running():
            return False
        console.print("Stopping the API…")
        return self.process.stop(timeout=20)
