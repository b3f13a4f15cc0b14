"""The devstack's environment for the backend, and stopping processes that ignore SIGTERM.

No stack is needed: the processes here are small Python programs started by the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ehr.devstack.processes import (
    ManagedProcess,
    listening_pids,
    process_alive,
    terminate,
)
from ehr.devstack.settings import StackSettings
from ehr.devstack.stack import PUBLIC_BASE_URL_SETTING, Stack

# Ignores SIGTERM (like a uvicorn whose event loop is stuck) and starts a child in its group.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import signal, time; "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print("ready", flush=True)
time.sleep(600)
"""


def _stack(tmp_path: Path, **overrides: object) -> Stack:
    settings = StackSettings(root=tmp_path, dir=tmp_path / "stack", **overrides)  # type: ignore[arg-type]
    return Stack.from_settings(settings)


@pytest.fixture
def no_user_public_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.lower() == PUBLIC_BASE_URL_SETTING.lower():
            monkeypatch.delenv(key)
    # CI picks another API port when 8000 is taken: the default case must not see it.
    monkeypatch.delenv("EHR_STACK_API_PORT", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the caller's


@pytest.mark.usefixtures("no_user_public_url")
def test_public_base_url_follows_the_api_port(tmp_path: Path) -> None:
    stack = _stack(tmp_path, api_port=8123)
    env = stack.service_env()
    assert env[PUBLIC_BASE_URL_SETTING] == "http://127.0.0.1:8123"
    assert stack.child_env()[PUBLIC_BASE_URL_SETTING] == "http://127.0.0.1:8123"
    assert _stack(tmp_path).service_env()[PUBLIC_BASE_URL_SETTING] == "http://127.0.0.1:8000"


@pytest.mark.usefixtures("no_user_public_url")
def test_a_public_base_url_set_by_the_user_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _stack(tmp_path, api_port=8123)
    monkeypatch.setenv(PUBLIC_BASE_URL_SETTING, "https://ehr.example.org")
    assert PUBLIC_BASE_URL_SETTING not in stack.service_env()
    assert stack.child_env()[PUBLIC_BASE_URL_SETTING] == "https://ehr.example.org"


@pytest.mark.usefixtures("no_user_public_url")
def test_a_public_base_url_in_dotenv_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ehr_gateway__public_base_url=https://ehr.example.org\n")
    stack = _stack(tmp_path, api_port=8123)
    assert PUBLIC_BASE_URL_SETTING not in stack.service_env()


def _start_stubborn(tmp_path: Path) -> tuple[ManagedProcess, int]:
    process = ManagedProcess(
        name="stubborn",
        pid_file=tmp_path / "run" / "stubborn.pid",
        log_file=tmp_path / "logs" / "stubborn.log",
        marker="STUBBORN-MARKER",
    )
    pid = process.start([sys.executable, "-c", STUBBORN, "STUBBORN-MARKER"])
    deadline = time.monotonic() + 10
    while "ready" not in process.log_file.read_text():
        assert time.monotonic() < deadline, "the stubborn process did not start"
        time.sleep(0.05)
    return process, pid


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_stop_escalates_to_sigkill_for_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    process, pid = _start_stubborn(tmp_path)
    assert len(_group_members(pid)) == 2  # the process and its child
    started = time.monotonic()
    assert process.stop(timeout=1.0)
    assert time.monotonic() - started < 8
    assert not process_alive(pid)
    assert _group_members(pid) == []
    assert not process.pid_file.exists()
    assert not process.running()


def test_terminate_stops_a_single_process_outside_our_groups(tmp_path: Path) -> None:
    # Not a session leader: only that pid is signalled (never the test runner's group).
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; "
         "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ok"
        assert os.getpgid(child.pid) == os.getpgid(0)
        terminate("child", child.pid, timeout=0.5)  # a zombie counts as gone
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_listening_pids_finds_the_holder_of_a_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert os.getpid() in listening_pids(port)
    assert os.getpid() not in listening_pids(port)
