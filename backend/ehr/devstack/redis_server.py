"""The project-local Redis (``.stack/redis``, 127.0.0.1 only, no persistence)."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ehr.devstack.errors import StackError
from ehr.devstack.processes import ManagedProcess, console, port_open, process_alive, wait_until

__all__ = ["RedisServer", "redis_ping"]


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when a Redis server answers PING on ``host:port`` (no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass(frozen=True)
class RedisServer:
    server_bin: Path
    stack_dir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.stack_dir / "redis"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="Redis",
            pid_file=self.stack_dir / "run" / "redis.pid",
            log_file=self.stack_dir / "logs" / "redis.log",
            marker="redis",  # Debian: redis-server is a link to redis-check-rdb
        )

    def running(self) -> bool:
        return self.process.running()

    def ensure_running(self) -> bool:
        """Start Redis unless it already answers; True when started now."""
        if redis_ping(self.port):
            note = "" if self.running() else " — not started by the devstack"
            console.print(
                f"[green]✓[/] Redis already running on 127.0.0.1:{self.port} (reused{note})"
            )
            return False
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is in use by something that is not Redis; stop it or choose "
                "another port: EHR_STACK_REDIS_PORT=…"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.server_bin),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            # Bound to loopback only; protected mode would refuse connections without a password.
            "--protected-mode", "no",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        console.print(
            f"[bold]Starting Redis[/] on 127.0.0.1:{self.port} (log {self.process.log_file})"
        )
        pid = self.process.start(argv)
        wait_until(
            f"Redis on 127.0.0.1:{self.port}",
            lambda: redis_ping(self.port),
            timeout=30,
            alive=lambda: process_alive(pid),
            log_file=self.process.log_file,
            interval=0.1,
        )
        return True

    def stop(self) -> bool:
        """SHUTDOWN NOSAVE, then make sure the process group is gone; True when one stopped."""
        if not self.running():
            return False
        console.print("Stopping Redis…")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                conn.sendall(b"SHUTDOWN NOSAVE\r\n")
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(64)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process.stop(timeout=10)
        return True
