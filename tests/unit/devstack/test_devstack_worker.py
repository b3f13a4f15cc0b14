"""The devstack's job worker: started detached with its health port, found by its pid file,
stopped by SIGTERM; moved off a busy port; started by ``up`` alone or with the rest.

No stack: the "worker" here is a small Python program whose command line carries the worker's
marker and that answers /health on the port it is given.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr.devstack.settings import StackSettings
from ehr.devstack.stack import SERVICES, Stack
from ehr.devstack.worker_server import MARKER, WorkerServer

FAKE_WORKER = """
import http.server, os, signal, sys
port = int(os.environ["EHR_JOBS__HEALTH_PORT"])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Health)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server.serve_forever()
"""


@pytest.fixture
def fake_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # The marker travels as the script's arguments: the pid file is believed only with it.
    monkeypatch.setattr(
        WorkerServer, "argv", lambda self: [sys.executable, "-c", FAKE_WORKER, *MARKER.split()]
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WorkerServer]:
    made = WorkerServer(
        repo_root=tmp_path, stack_dir=tmp_path / "stack", port=_free_port(), timeout_seconds=20
    )
    yield made
    made.stop()


@pytest.mark.usefixtures("fake_worker")
def test_the_worker_starts_is_reused_and_stops(server: WorkerServer) -> None:
    assert server.start(env={"PATH": "/usr/bin:/bin"}) is True
    assert server.process.running()
    assert server.ready()
    assert server.current_port() == server.port
    assert server.start(env={"PATH": "/usr/bin:/bin"}) is False  # healthy and current: reused
    assert server.stop() is True
    assert not server.process.running()
    assert not server.port_file.exists()
    assert server.stop() is False


@pytest.mark.usefixtures("fake_worker")
def test_a_busy_health_port_moves_the_worker_to_the_next_free_one(server: WorkerServer) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", server.port))
        holder.listen()
        server.start(env={"PATH": "/usr/bin:/bin"})
        assert server.current_port() != server.port
        assert server.ready()
        assert str(server.current_port()) in server.health_url


def test_up_starts_the_worker_alone_or_after_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "worker" in SERVICES
    stack = Stack.from_settings(StackSettings(root=tmp_path, dir=tmp_path / "stack"))
    calls: list[str] = []
    names = (
        "start_postgres",
        "start_redis",
        "migrate",
        "seed",
        "start_worker",
        "start_hl7_listener",
    )
    for name in names:
        monkeypatch.setattr(Stack, name, lambda self, name=name: calls.append(name))
    monkeypatch.setattr(Stack, "start_hapi", lambda self, wait: calls.append("start_hapi"))

    stack.up(only=["worker"])
    assert calls == ["start_worker"]

    calls.clear()
    stack.up(api=False, seed=False)
    assert calls == [
        "start_postgres",
        "start_redis",
        "start_hapi",
        "migrate",
        "start_worker",
        "start_hl7_listener",
    ]

    calls.clear()
    stack.up(only=["hl7"])
    assert calls == ["start_hl7_listener"]

    calls.clear()
    stack.up(api=False, seed=False, worker=False)
    assert "start_worker" not in calls
    assert "start_hl7_listener" not in calls
