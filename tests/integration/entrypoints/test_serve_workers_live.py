"""``ehr serve`` as production starts it: several uvicorn workers answering one port, and
``/metrics`` adding up every worker's samples (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.ports import free_port

pytestmark = pytest.mark.integration

_EHR = Path(sys.executable).with_name("ehr")
_HEALTH_SAMPLE = re.compile(
    r'^ehr_http_requests_total\{method="GET",route="/health",status="200"\} (\S+)$', re.MULTILINE
)


def _workers(pid: int) -> list[int]:
    """The worker processes under ``ehr serve`` (multiprocessing's spawned children; not its
    resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    metrics = tmp_path / "metrics"  # as an operator provides it: an existing directory
    metrics.mkdir()
    env = {**os.environ, "EHR_LOG__LEVEL": "WARNING", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [str(_EHR), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "ehr serve exited"
            time.sleep(0.2)
        else:
            pytest.fail("ehr serve did not answer /health within 60 s")
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_several_workers_and_metrics_of_all_of_them(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, process = served
    # The supervisor and its two worker processes.
    workers = _workers(process.pid)
    assert len(workers) == 2, workers
    answered_by: set[str] = set()
    with httpx.Client(base_url=base) as client:
        # New connections: the workers share the listening socket and take turns accepting.
        for _ in range(40):
            response = client.get("/health", headers={"connection": "close"})
            assert response.status_code == 200
            answered_by.add(response.headers.get("x-request-id", ""))
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    samples = [float(value) for value in _HEALTH_SAMPLE.findall(metrics.text)]
    # One sample, the sum over both workers (multiprocess mode), counting every request above.
    assert len(samples) == 1, samples
    assert samples[0] >= 40
    assert len(answered_by) == 40
