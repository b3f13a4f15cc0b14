"""HAPI FHIR JPA (R4) from our launcher jar: build only when stale, start detached, wait.

The launch command is the one in docs/conventions.md. The datasource password goes in the
environment (``SPRING_DATASOURCE_PASSWORD``, which Spring ranks above application.yaml) rather
than on the command line, so it does not show in ``ps``.
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ehr.devstack.errors import StackError
from ehr.devstack.processes import ManagedProcess, console, log_tail, port_open, wait_until

__all__ = ["JAR_NAME", "Datasource", "HapiServer"]

JAR_NAME = "ehr-hapi.jar"


@dataclass(frozen=True)
class Datasource:
    jdbc_url: str
    username: str
    password: str


@dataclass(frozen=True)
class HapiServer:
    repo_root: Path
    stack_dir: Path
    port: int
    xmx: str
    timeout_seconds: float

    @property
    def launcher_dir(self) -> Path:
        return self.repo_root / "hapi-config" / "launcher"

    @property
    def jar(self) -> Path:
        return self.launcher_dir / "target" / JAR_NAME

    @property
    def application_yaml(self) -> Path:
        return self.repo_root / "hapi-config" / "application.yaml"

    @property
    def base_url(self) -> str:
        """FHIR base without a tenant (what ``EHR_FHIR__BASE_URL`` expects)."""
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/DEFAULT/metadata"

    @property
    def build_log(self) -> Path:
        return self.stack_dir / "logs" / "hapi-build.log"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="HAPI",
            pid_file=self.stack_dir / "run" / "hapi.pid",
            log_file=self.stack_dir / "logs" / "hapi.log",
            marker=JAR_NAME,
        )

    # --- build -------------------------------------------------------------------------------
    def _sources(self) -> list[Path]:
        files = [self.launcher_dir / "pom.xml"]
        src = self.launcher_dir / "src"
        if src.is_dir():
            files.extend(path for path in src.rglob("*") if path.is_file())
        return files

    def jar_stale(self) -> bool:
        if not self.jar.is_file():
            return True
        built = self.jar.stat().st_mtime
        return any(path.stat().st_mtime > built for path in self._sources())

    def build_if_stale(self, mvn: str) -> bool:
        """Build the launcher jar when missing or older than a source; True when built."""
        if not self.jar_stale():
            console.print("[green]✓[/] HAPI launcher up to date, skipping build")
            return False
        first = not (Path.home() / ".m2" / "repository" / "ca" / "uhn").is_dir()
        note = " (first build downloads ~300 MB from Maven Central)" if first else ""
        console.print(f"[bold]Building the HAPI launcher[/]{note}; log {self.build_log}")
        self.build_log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            mvn, "-B", "-q",
            "-s", str(self.launcher_dir / "settings.xml"),
            "-f", str(self.launcher_dir / "pom.xml"),
            "package", "-DskipTests",
        ]  # fmt: skip
        with self.build_log.open("wb") as log:
            builder = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.repo_root,
            )
            try:
                wait_until(
                    "Maven build of the HAPI launcher",
                    lambda: builder.poll() is not None,
                    timeout=40 * 60,
                    interval=0.5,
                    done="finished",
                )
            finally:
                if builder.poll() is None:
                    builder.kill()
                    builder.wait()
        if builder.returncode != 0 or not self.jar.is_file():
            raise StackError(
                f"the HAPI launcher build failed (exit {builder.returncode}); see {self.build_log}",
                log_tail=log_tail(self.build_log),
            )
        # Maven may keep the jar's mtime older than a source touched during the build.
        os.utime(self.jar)
        return True

    # --- run ---------------------------------------------------------------------------------
    def answering(self) -> bool:
        """True when ``/fhir/DEFAULT/metadata`` answers 200."""
        try:
            response = httpx.get(self.metadata_url, timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def argv(self, java: str, datasource: Datasource) -> list[str]:
        return [
            java,
            f"-Xmx{self.xmx}",
            "-jar", str(self.jar),
            f"--spring.config.additional-location=file:{self.application_yaml}",
            f"--server.port={self.port}",
            # Loopback only: HAPI authenticates nobody; the API is the door.
            "--server.address=127.0.0.1",
            f"--spring.datasource.url={datasource.jdbc_url}",
            f"--spring.datasource.username={datasource.username}",
            "--hapi.fhir.reuse_cached_search_results_millis=0",
        ]  # fmt: skip

    def start(
        self, java: str, datasource: Datasource, *, env: Mapping[str, str], wait: bool = True
    ) -> bool:
        """Start HAPI unless it answers; wait for /metadata if ``wait``; True when started."""
        if self.answering():
            note = "" if self.process.running() else " — not started by the devstack"
            console.print(f"[green]✓[/] HAPI already answering on {self.base_url} (reused{note})")
            return False
        if self.process.running() and self.process.age() > self.timeout_seconds:
            # Ours, but past its whole start-up window without answering: hung, not starting.
            console.print(
                f"[yellow]![/] HAPI (pid {self.process.pid()}) started "
                f"{self.process.age():.0f} s ago and does not answer {self.metadata_url}: "
                "replacing it"
            )
            self.stop()
        if not self.process.running():
            if port_open(self.port):
                raise StackError(
                    f"port {self.port} is in use but HAPI's metadata does not answer there; stop "
                    "that program or choose another port: EHR_STACK_HAPI_PORT=…"
                )
            if not self.jar.is_file():
                raise StackError(f"{self.jar} is missing; `ehr stack up` builds it")
            if not self.application_yaml.is_file():
                raise StackError(f"{self.application_yaml} is missing (HAPI's configuration)")
            console.print(
                f"[bold]Starting HAPI FHIR[/] on {self.base_url} "
                f"(heap {self.xmx}, log {self.process.log_file})"
            )
            self.process.start(
                self.argv(java, datasource),
                env={**env, "SPRING_DATASOURCE_PASSWORD": datasource.password},
                cwd=self.repo_root,
            )
        if wait:
            self.wait()
        return True

    def wait(self) -> None:
        wait_until(
            f"HAPI FHIR ({self.metadata_url})",
            self.answering,
            timeout=self.timeout_seconds,
            alive=self.process.running,
            log_file=self.process.log_file,
            interval=2.0,
        )

    def stop(self) -> bool:
        """Stop the devstack's HAPI (its whole process group); True when one was stopped."""
        if not self.process.running():
            return False
        console.print("Stopping HAPI…")
        return self.process.stop(timeout=60)
