"""vegeta (github.com/tsenart/vegeta, MIT) as the load generator: installed on first use.

Why vegeta: one Go tool for both load models the benchmark needs — a constant arrival rate
(``-rate R/1s``: the pacer fires each request at its scheduled time, with up to ``max_workers``
outstanding, so a slow server cannot slow the arrivals) and saturation (``-rate 0`` with a fixed
number of workers: a closed loop). It takes a list of requests with headers (JSON targets, sent in
order), and writes every result (timestamp, latency, status, URL) so latencies can be split by
request kind. k6 is not used (AGPL); wrk has no open model.

It is built with ``go install`` from the Go module proxy into ``.stack/bin`` (about 25 s once;
needs the Go toolchain) unless ``vegeta`` is already on PATH or ``EHR_BENCH_VEGETA`` names it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MODULE = "github.com/tsenart/vegeta/v12"
VERSION = "v12.13.0"
REPO = Path(__file__).resolve().parents[2]
INSTALL_DIR = REPO / ".stack" / "bin"


def ensure_vegeta() -> Path:
    """The vegeta binary: ``$EHR_BENCH_VEGETA``, ``.stack/bin/vegeta``, PATH, else build it."""
    named = os.environ.get("EHR_BENCH_VEGETA")
    if named:
        return Path(named)
    local = INSTALL_DIR / "vegeta"
    if local.is_file():
        return local
    found = shutil.which("vegeta")
    if found:
        return Path(found)
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )
    if go is None:
        raise SystemExit(
            "the benchmark needs vegeta (load generator) and no Go toolchain is there to build it: "
            f"install Go, or `go install {MODULE}@{VERSION}` elsewhere and set EHR_BENCH_VEGETA"
        )
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    print(f"installing vegeta: go install {MODULE}@{VERSION} into {INSTALL_DIR} (once) ...")
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - fixed module and version
        [go, "install", f"{MODULE}@{VERSION}"],
        env={**os.environ, "GOBIN": str(INSTALL_DIR)},
        check=True,
        timeout=600,
    )
    print(f"  built in {time.perf_counter() - started:.0f} s")
    return local


def version(binary: Path) -> str:
    result = subprocess.run(  # noqa: S603
        [str(binary), "-version"], capture_output=True, text=True, check=False, timeout=10
    )
    lines = (result.stdout or result.stderr).strip().splitlines()
    named = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Version")), "")
    # `go install` builds carry no version stamp: the one this module installs.
    return named or f"{VERSION} (go install)"


@dataclass(frozen=True)
class Request:
    kind: str  # e.g. "read", "search" (how latencies are grouped)
    url: str


@dataclass
class Result:
    """One attack: per-request (kind, status, latency ms from the scheduled start), and totals."""

    rows: list[tuple[str, int, float]]
    seconds: float  # wall time of the attack
    loadgen_cpu_ms: float  # vegeta's own user+system CPU
    max_lag_ms: float  # open model: how late the latest request left against its schedule
    errors: dict[str, int]
    span_s: float  # first request sent .. last answer received

    def ok(self) -> int:
        return sum(1 for _, status, _ in self.rows if 200 <= status < 400)

    def latencies(self, kind: str) -> list[float]:
        return [ms for k, status, ms in self.rows if k == kind and 200 <= status < 400]


def _error_name(error: str) -> str:
    """A short name for a transport error of Go's net/http."""
    if "Client.Timeout" in error or "deadline exceeded" in error:
        return "timeout"
    return (error.rsplit(":", 1)[-1].strip() or "error")[:40]


def _targets_file(requests: Sequence[Request], headers: dict[str, str], folder: Path) -> Path:
    path = folder / "targets.jsonl"
    header = {name: [value] for name, value in headers.items()}
    with path.open("w") as out:
        for request in requests:
            out.write(json.dumps({"method": "GET", "url": request.url, "header": header}) + "\n")
    return path


def attack(
    binary: Path,
    requests: Sequence[Request],
    headers: dict[str, str],
    *,
    seconds: float,
    rate: float | None = None,
    concurrency: int = 16,
    max_in_flight: int = 256,
    timeout_s: float = 15.0,
) -> Result:
    """Send ``requests`` in order (cycling) for ``seconds``.

    ``rate`` given: open model at ``rate``/s (latency measured from each request's scheduled
    start, ``t0 + seq / rate``, so a request the pacer sent late still counts its wait), up to
    ``max_in_flight`` outstanding. ``rate`` None: closed loop, ``concurrency`` workers back to back.
    """
    kinds = {request.url: request.kind for request in requests}
    with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as folder_name:
        folder = Path(folder_name)
        targets = _targets_file(requests, headers, folder)
        output = folder / "results.bin"
        argv = [
            str(binary), "attack",
            "-format=json", f"-targets={targets}",
            f"-duration={seconds}s", f"-timeout={timeout_s}s",
            "-max-body=0",  # bodies are read to the end and discarded, not stored
            "-http2=false", "-keepalive=true",
            f"-output={output}",
        ]  # fmt: skip
        if rate is not None:
            argv += [f"-rate={rate:g}/1s", "-workers=16", f"-max-workers={max_in_flight}"]
        else:
            argv += ["-rate=0", f"-workers={concurrency}", f"-max-workers={concurrency}"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        took = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode != 0:
            raise SystemExit(f"vegeta attack failed: {completed.stderr.strip()[:500]}")
        cpu_ms = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000.0
        encoded = subprocess.run(  # noqa: S603
            [str(binary), "encode", "-to=csv", str(output)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    raw = []
    errors: dict[str, int] = {}
    for record in csv.reader(io.StringIO(encoded)):
        # timestamp ns, code, latency ns, bytes out, bytes in, error, body, attack, seq, method,
        # url, headers
        timestamp, code, latency = int(record[0]), int(record[1]), int(record[2])
        seq, url, error = int(record[8]), record[10], record[5]
        raw.append((seq, timestamp, code, latency, url))
        if code == 0 or code >= 400:
            what = str(code) if code else _error_name(error)
            errors[what] = errors.get(what, 0) + 1
    raw.sort()
    rows = []
    max_lag = 0.0
    span_s = 0.0
    if raw:
        span_s = (
            max(ts + lat for _, ts, _, lat, _ in raw) - min(ts for _, ts, _, _, _ in raw)
        ) / 1e9
        t0 = raw[0][1]
        for seq, timestamp, code, latency, url in raw:
            lag_ns = (timestamp - t0 - seq * 1e9 / rate) if rate is not None else 0.0
            lag_ns = max(lag_ns, 0.0)
            max_lag = max(max_lag, lag_ns / 1e6)
            kind = kinds.get(url) or ("search" if "?" in url else "read")
            rows.append((kind, code, (latency + lag_ns) / 1e6))
    return Result(
        rows=rows,
        seconds=took,
        loadgen_cpu_ms=cpu_ms,
        max_lag_ms=max_lag,
        errors=errors,
        span_s=span_s,
    )
