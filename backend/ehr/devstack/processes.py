"""Detached child processes, pid files, process-group shutdown, waiting with a visible spinner.

Every long-running service the devstack starts is a session leader (``start_new_session=True``),
so its process group id equals its pid and stopping it means signalling the whole group: no
orphaned JVM threads or uvicorn workers. A pid file records it, together with a marker string
that must appear in the process's command line before the devstack will signal it — a recycled
pid or somebody else's server is never touched.
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ehr.devstack.errors import StackError

__all__ = [
    "ManagedProcess",
    "child_pids",
    "console",
    "listening_pids",
    "log_tail",
    "port_open",
    "process_alive",
    "process_cwd",
    "process_identity",
    "terminate",
    "wait_until",
]

console = Console(highlight=False)
if not console.is_terminal:  # CI logs, pipes: no 80-column wrapping of tables and paths
    console.width = max(console.width, 120)

# Popen objects of children started by this interpreter: kept so they can be reaped (no zombies
# while a test process stops and restarts HAPI) and never garbage-collected while running.
_children: dict[int, subprocess.Popen[bytes]] = {}


def process_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Field 3 (after the parenthesised command name) is the state; Z = zombie.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _live_processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every live, non-zombie process, from ``/proc``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the parenthesised command name: state, ppid, pgrp, ...
        if fields[0] != "Z":
            yield int(entry.name), int(fields[1]), int(fields[2])


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in group ``pgid`` (our own children are reaped)."""
    for child in list(_children.values()):
        child.poll()
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pgrp == pgid for _, _, pgrp in _live_processes())


def _identity(pid: int) -> str:
    """The command line and executable of ``pid`` ('' when unreadable).

    The executable matters for servers that rewrite their process title (Redis does, and a read
    during the rewrite can see an empty command line).
    """
    parts: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        parts.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    with contextlib.suppress(OSError):
        parts.append(os.readlink(f"/proc/{pid}/exe"))
    return " ".join(parts)


def child_pids(pid: int) -> list[int]:
    """The live direct children of ``pid``."""
    return [child for child, ppid, _ in _live_processes() if ppid == pid]


def process_identity(pid: int) -> str:
    """The command line and executable of ``pid`` ('' when unreadable)."""
    return _identity(pid)


def process_cwd(pid: int) -> Path | None:
    """The working directory of ``pid`` (None when unreadable)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def listening_pids(port: int) -> list[int]:
    """The pids holding a listening TCP socket on ``port`` (any address; as far as /proc shows)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            # sl local_address rem_address st ... inode; st 0A = LISTEN
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return []
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in inodes:
                pids.append(int(entry.name))
                break
    return sorted(pids)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


@dataclass(frozen=True)
class ManagedProcess:
    """One detached service process known by its pid file."""

    name: str
    pid_file: Path
    log_file: Path
    # A string that must occur in /proc/<pid>/cmdline for the pid file to be believed.
    marker: str

    def pid(self) -> int | None:
        """The pid of the running process this file names, or None (stale files are removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not process_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return None
        # A live pid that is not our program: the pid was recycled; never signal it.
        return pid if self.marker in _identity(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start ``argv`` in its own session, output appended to the log; record its pid."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(
                f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode()
            )
            log.flush()
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        _children[child.pid] = child
        self.pid_file.write_text(f"{child.pid}\n")
        return child.pid

    def started_at(self) -> float | None:
        """When the recorded process was started (the pid file's mtime), or None."""
        try:
            return self.pid_file.stat().st_mtime
        except OSError:
            return None

    def age(self) -> float:
        """Seconds since the recorded process was started (0 when unknown)."""
        started = self.started_at()
        return max(0.0, time.time() - started) if started is not None else 0.0

    def stop(self, *, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL it after ``timeout``; True when something stopped."""
        pid = self.pid()
        if pid is None:
            return False
        terminate(self.name, pid, timeout=timeout)
        self.pid_file.unlink(missing_ok=True)
        return True


def terminate(name: str, pid: int, *, timeout: float) -> None:
    """Stop ``pid``: SIGTERM, then SIGKILL after ``timeout`` s if it (or its group) is still there.

    A session leader (every service the devstack starts) is stopped with its whole process group;
    any other process alone. Raises :class:`StackError` if it survives SIGKILL.
    """
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        _reap(pid)
        return

    def alive() -> bool:
        return _group_alive(pid) if group else process_alive(pid)

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    what = f"{name} (process group {pid})" if group else f"{name} (pid {pid})"
    send(signal.SIGTERM)
    if not _wait_gone(alive, timeout):
        console.print(
            f"[yellow]![/] {what} still running {timeout:.0f} s after SIGTERM: sending SIGKILL"
        )
        send(signal.SIGKILL)
        if not _wait_gone(alive, 10.0):
            raise StackError(f"{what} did not exit after SIGKILL")
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of our own child ``pid`` (it is gone, or a zombie)."""
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _wait_gone(alive: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def wait_until(
    what: str,
    ready: Callable[[], bool],
    *,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
    interval: float = 1.0,
    done: str = "ready",
) -> float:
    """Poll ``ready`` with a spinner and elapsed time until it is true; return seconds taken.

    Fails early when ``alive`` says the process died, and after ``timeout`` seconds; the error
    carries the log's last lines. Without a terminal (CI) a plain line is printed every 15 s.
    """
    started = time.monotonic()
    last_note = started
    interactive = console.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not interactive,
    ) as progress:
        progress.add_task(f"Waiting for {what}", total=None)
        while True:
            if ready():
                break
            now = time.monotonic()
            tail = log_tail(log_file) if log_file is not None else ""
            if alive is not None and not alive():
                raise StackError(
                    f"{what} exited while starting"
                    + (f"; see {log_file}" if log_file is not None else ""),
                    log_tail=tail,
                )
            if now - started > timeout:
                raise StackError(
                    f"{what} not ready after {timeout:.0f} s"
                    + (f"; see {log_file}" if log_file is not None else ""),
                    log_tail=tail,
                )
            if not interactive and now - last_note >= 15:
                console.print(f"  … waiting for {what} ({now - started:.0f} s)")
                last_note = now
            time.sleep(interval)
    elapsed = time.monotonic() - started
    console.print(f"[green]✓[/] {what} {done} ({elapsed:.0f} s)")
    return elapsed
