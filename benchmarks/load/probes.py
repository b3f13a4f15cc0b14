"""What the stack's processes spent: CPU from /proc, PostgreSQL statements, Redis commands.

CPU: utime + stime of ``/proc/<pid>/stat`` (all threads of the process; clock ticks, 10 ms on
Linux) summed over a process group — the API (the ``ehr serve`` parent and every uvicorn worker),
HAPI (its JVM), PostgreSQL (the postmaster and every child: backends, WAL writer, checkpointer),
Redis. Read before and after a phase; divided by the requests it answered.

PostgreSQL: ``pg_stat_statements`` (preloaded by the devstack, ``track_utility`` on, so BEGIN,
COMMIT, SET and the like count: every statement is one client round trip) per database, read as
the cluster superuser over the devstack's private socket. Redis: ``INFO commandstats`` (calls per
command) and ``INFO stats`` (``total_commands_processed``; ``total_reads_processed`` counts the
read events of the server — a pipeline of N commands arrives in one read, so this is the round
trip count; ``total_connections_received``: new connections).

Both are server-wide: anything else using the shared stack during a phase is counted too (run on
a quiet stack; the output says which database each count is for).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehr.devstack.postgres_cluster import PostgresCluster
from ehr.devstack.processes import listening_pids

CLOCK_TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------
# Processes and CPU
# ----------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z":
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += parents.get(current, [])
    return found


def cpu_ms(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each live pid of ``pids`` (ms)."""
    used = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            used[pid] = (int(fields[11]) + int(fields[12])) * CLOCK_TICK_MS  # stat fields 14, 15
    return used


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values[:8]) - idle), float(sum(values[:8]))


@dataclass
class ProcessGroups:
    """The pids of each server, re-read at every snapshot (workers and backends come and go).

    HAPI and Redis are found by the port they listen on, every time: if someone restarts one of
    the shared servers during the run, ``restarted`` says so and the phase's CPU is not its own.
    """

    api_root: int | None
    hapi_port: int
    postgres_pid: int | None
    redis_port: int
    restarted: list[str] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def _listener(self, name: str, port: int) -> int | None:
        pid = next(iter(listening_pids(port)), None)
        first = self._seen.setdefault(name, pid) if pid is not None else None
        if pid is not None and first != pid:
            self.restarted.append(f"{name} pid {first} -> {pid}")
            self._seen[name] = pid
        return pid

    @property
    def hapi_pid(self) -> int | None:
        return self._listener("HAPI", self.hapi_port)

    def groups(self) -> dict[str, list[int]]:
        def below(pid: int | None) -> list[int]:
            return descendants(pid) if pid else []

        hapi = self.hapi_pid
        redis = self._listener("Redis", self.redis_port)
        return {
            "API": below(self.api_root),
            "HAPI": [hapi] if hapi else [],
            "PG": below(self.postgres_pid),
            "Redis": [redis] if redis else [],
        }

    def api_pids(self) -> list[int]:
        return self.groups()["API"]


@dataclass
class CpuSnapshot:
    per_group: dict[str, dict[int, float]]  # group -> pid -> CPU ms so far
    busy: tuple[float, float]


def cpu_snapshot(processes: ProcessGroups) -> CpuSnapshot:
    return CpuSnapshot(
        {name: cpu_ms(pids) for name, pids in processes.groups().items()}, machine_busy()
    )


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> tuple[dict[str, float], float]:
    """(ms per group, machine busy fraction) between two snapshots.

    Per process: a process that started in between counts all its CPU; one that ended in between
    (a PostgreSQL backend whose client closed) counts nothing — /proc no longer has it.
    """
    used = {
        name: sum(ms - before.per_group.get(name, {}).get(pid, 0.0) for pid, ms in pids.items())
        for name, pids in after.per_group.items()
    }
    busy = after.busy[0] - before.busy[0]
    total = after.busy[1] - before.busy[1]
    return used, (busy / total if total else float("nan"))


# ----------------------------------------------------------------------------------------
# Pinning
# ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(assignments: dict[int, set[int]]) -> Iterator[None]:
    """Every thread of each pid on the given CPUs for the block; the old affinity restored."""
    saved: dict[int, set[int]] = {}
    try:
        for pid, cpus in assignments.items():
            for task in Path(f"/proc/{pid}/task").iterdir():
                tid = int(task.name)
                with contextlib.suppress(OSError):
                    saved[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, cpus)
        yield
    finally:
        for pid in assignments:
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    tid = int(task.name)
                    with contextlib.suppress(OSError):
                        # New threads inherited the pinned mask: give them the process's old one.
                        os.sched_setaffinity(
                            tid, saved.get(tid) or saved.get(pid) or set(range(os.cpu_count() or 1))
                        )


# ----------------------------------------------------------------------------------------
# PostgreSQL: durability and statement counts
# ----------------------------------------------------------------------------------------

SEP = "\x1f"


class Postgres:
    """The devstack's cluster, as its superuser (psql over the private socket)."""

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster
        self._previous: str | None = None
        self._switched = False

    def rows(self, sql: str, database: str = "postgres") -> list[list[str]]:
        out = self.cluster.psql(sql, database=database)
        return [line.split(SEP) for line in out.splitlines() if line]

    def setting(self, name: str, database: str = "postgres") -> tuple[str, str]:
        """(value, source) as a new session of ``database`` sees it."""
        row = self.rows(
            f"SELECT setting || chr(31) || source FROM pg_settings WHERE name = '{name}';",  # noqa: S608 - constant names
            database,
        )
        return row[0][0], row[0][1]

    def durability(self, wanted: str) -> str:
        """Set ``synchronous_commit`` for the whole running cluster (ALTER SYSTEM + reload).

        The previous postgresql.auto.conf value is remembered for :meth:`restore`. When the
        running cluster got the setting on its command line (a stack started before the devstack
        moved it to ALTER SYSTEM), ALTER SYSTEM cannot override it: nothing is changed and the
        caller prints what is in effect.
        """
        _value, source = self.setting("synchronous_commit")
        if source == "command line":
            return "command line: not changeable without a PostgreSQL restart"
        auto = self.rows(
            "SELECT setting FROM pg_file_settings WHERE name = 'synchronous_commit' "
            "AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1;"
        )
        self._previous = auto[0][0] if auto else None
        self._switched = True
        self.cluster.psql(
            f"ALTER SYSTEM SET synchronous_commit = '{wanted}';\nSELECT pg_reload_conf();\n"
        )
        return f"ALTER SYSTEM (was {self._previous or 'default'}, restored at the end)"

    def restore(self) -> None:
        if not self._switched:
            return
        self._switched = False
        statement = (
            f"ALTER SYSTEM SET synchronous_commit = '{self._previous}'"
            if self._previous
            else "ALTER SYSTEM RESET synchronous_commit"
        )
        self.cluster.psql(f"{statement};\nSELECT pg_reload_conf();\n")

    def statements_available(self) -> bool:
        with contextlib.suppress(Exception):
            return bool(
                self.rows("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements';")
            )
        return False

    def reset_statements(self) -> None:
        self.cluster.psql("SELECT pg_stat_statements_reset();\n")

    def statements(self) -> dict[str, dict[str, int]]:
        """database -> normalised query -> calls, since the last reset."""
        found: dict[str, dict[str, int]] = {}
        for datname, calls, query in self.rows(
            "SELECT d.datname || chr(31) || s.calls || chr(31) || "
            "left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid;"
        ):
            found.setdefault(datname, {})
            found[datname][query] = found[datname].get(query, 0) + int(calls)
        return found


# ----------------------------------------------------------------------------------------
# Redis
# ----------------------------------------------------------------------------------------


def redis_counters(client: Any) -> dict[str, int]:
    """Calls per command, plus ``total_commands_processed``, ``total_reads_processed`` (round
    trips) and ``total_connections_received`` from INFO."""
    counters = {
        f"cmd:{name.removeprefix('cmdstat_')}": int(values["calls"])
        for name, values in client.info("commandstats").items()
    }
    stats = client.info("stats")
    for key in ("total_commands_processed", "total_reads_processed", "total_connections_received"):
        counters[key] = int(stats.get(key, 0))
    return counters


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
