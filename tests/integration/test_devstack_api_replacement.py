"""``ehr stack up`` replaces an API that runs but is not ready, and ``down`` kills a stubborn one.

A hung "API" (a process whose command line names ``ehr.entrypoints.api:create_app``, that ignores
SIGTERM
and holds the port without ever answering) stands in for a wedged uvicorn. The real API is then
started on a free port with its own state directory, against the test stack's services.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.ports import free_port

from ehr.devstack.api_server import APP_FACTORY, ApiServer
from ehr.devstack.processes import listening_pids, port_open, process_alive
from ehr.devstack.settings import StackSettings
from ehr.devstack.stack import PUBLIC_BASE_URL_SETTING, Stack

pytestmark = pytest.mark.integration

# Listens, never accepts (connections hang in the backlog), ignores SIGTERM.
HUNG_API = """
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[2])))
server.listen(64)
print("listening", flush=True)
time.sleep(600)
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiServer]:
    stack = Stack.from_settings()
    server = ApiServer(
        repo_root=stack.root, stack_dir=tmp_path / "stack", port=free_port(), timeout_seconds=60
    )
    yield server
    server.stop()


_hung: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap_hung_apis() -> Iterator[None]:
    yield
    while _hung:
        child = _hung.pop()
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def _hung_api(api: ApiServer, *, pid_file: bool) -> int:
    log = api.process.log_file
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", HUNG_API, APP_FACTORY, str(api.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=api.repo_root,
            start_new_session=True,
        )
    _hung.append(child)
    deadline = time.monotonic() + 10
    while not port_open(api.port):
        assert time.monotonic() < deadline, "the hung API did not listen"
        time.sleep(0.05)
    if pid_file:
        api.process.pid_file.parent.mkdir(parents=True, exist_ok=True)
        api.process.pid_file.write_text(f"{child.pid}\n")
        # Started long ago: past its start-up window.
        old = time.time() - 3600
        os.utime(api.process.pid_file, (old, old))
    return child.pid


def _env() -> dict[str, str]:
    return Stack.from_settings().child_env()


def test_up_replaces_a_running_but_hung_api(api: ApiServer) -> None:
    hung = _hung_api(api, pid_file=True)
    assert api.process.pid() == hung
    started = time.monotonic()
    assert api.start(env=_env()) is True
    assert time.monotonic() - started < 50
    assert not process_alive(hung)
    assert api.ready()
    assert api.process.pid() not in (None, hung)
    # Reused when ready.
    assert api.start(env=_env()) is False


def test_up_replaces_a_hung_orphan_of_this_checkout_holding_the_port(api: ApiServer) -> None:
    hung = _hung_api(api, pid_file=False)
    assert api.process.pid() is None
    assert listening_pids(api.port) == [hung]
    assert api.start(env=_env()) is True
    assert not process_alive(hung)
    assert api.ready()


def test_down_kills_an_api_that_ignores_sigterm(api: ApiServer) -> None:
    hung = _hung_api(api, pid_file=True)
    started = time.monotonic()
    assert api.stop() is True
    assert time.monotonic() - started < 25
    assert not process_alive(hung)
    assert not port_open(api.port)


def test_the_api_of_a_stack_on_another_port_publishes_that_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outer `ehr stack run` exported the public base URL of the default stack: a user who
    # sets none gets the one of the port the API runs on.
    monkeypatch.delenv(PUBLIC_BASE_URL_SETTING, raising=False)
    port = free_port()
    stack = Stack.from_settings(StackSettings(api_port=port, dir=tmp_path / "other"))
    assert stack.service_env()[PUBLIC_BASE_URL_SETTING] == f"http://127.0.0.1:{port}"
    try:
        stack.api.start(env=stack.child_env())
        smart = httpx.get(f"{stack.api.base_url}/fhir/.well-known/smart-configuration", timeout=10)
        assert smart.status_code == 200
        assert smart.json()["token_endpoint"] == f"http://127.0.0.1:{port}/oauth2/token"
        metadata = httpx.get(
            f"{stack.api.base_url}/fhir/metadata",
            headers={"Accept": "application/fhir+json"},
            timeout=30,
        )
        assert metadata.status_code == 200
        assert metadata.json()["implementation"]["url"] == f"http://127.0.0.1:{port}/fhir"
    finally:
        stack.api.stop()
