"""What a job is: ``define(...)`` returns a :class:`JobDefinition`; the worker's composition root
(``ehr.entrypoints.worker``) registers the definitions it runs in a :class:`JobRegistry`.

``define`` has no side effect (ADR 0016: no import-time registry): a module exposes its
definitions in its public surface, defers them with :func:`ehr.platform.jobs.defer`, and the
worker lists them. A definition is immutable; its ``kind`` is the queue's task name.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from croniter import croniter

if TYPE_CHECKING:
    from ehr.platform.jobs.run import JobRun

__all__ = ["DEFAULT_QUEUE", "Handler", "JobDefinition", "JobRegistry", "LockOf", "define"]

DEFAULT_QUEUE: Final = "default"
_KIND: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_QUEUE: Final = re.compile(r"[a-z][a-z0-9_-]{0,63}")

# The handler: ``async def handler(run: JobRun) -> dict | None`` (the result summary: ids and
# counts only, it is shown to the tenant's administrators).
Handler = Callable[["JobRun"], Awaitable[Mapping[str, Any] | None]]
# A lock key from the job's tenant id (None for platform jobs) and args; None = no shared lock.
LockOf = Callable[[str | None, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class JobDefinition:
    """A kind of job. See :func:`define`."""

    kind: str
    handler: Handler
    queue: str = DEFAULT_QUEUE
    max_attempts: int = 5
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    exclusive: LockOf | None = None
    queueing_lock: LockOf | None = None
    cron: str | None = None
    description: str = ""


def define(
    kind: str,
    handler: Handler,
    *,
    queue: str = DEFAULT_QUEUE,
    max_attempts: int = 5,
    retry_base_seconds: float = 2.0,
    retry_max_seconds: float = 600.0,
    exclusive: LockOf | None = None,
    queueing_lock: LockOf | None = None,
    cron: str | None = None,
    description: str = "",
) -> JobDefinition:
    """A job kind ``<area>.<name>`` run by ``handler``.

    - ``max_attempts``: runs before the job is ``failed`` (an exception retries it after
      ``retry_base_seconds * 2**attempt`` with jitter, at most ``retry_max_seconds``);
      a cancelled run is never retried; a run released at shutdown or found stalled does not
      end the job.
    - ``exclusive(tenant_id, args)``: jobs with the same key never run at the same time (they
      wait for each other; procrastinate's ``lock``). Without it each job is its own key: the
      same job never runs twice at once, even when a stalled run is retried.
    - ``queueing_lock(tenant_id, args)``: at most one job with this key waits in the queue; a
      second ``defer`` is refused (409 ``job_already_queued``).
    - ``cron``: a periodic platform job (5 fields, or 6 with seconds last), deferred by the
      workers once per slot however many run; it has no tenant.
    """
    if not _KIND.fullmatch(kind) or len(kind) > 128:
        raise ValueError(f"job kind {kind!r}: use <area>.<name> in lower case")
    if not _QUEUE.fullmatch(queue):
        raise ValueError(f"queue {queue!r}: lower case letters, digits, '_' or '-'")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if cron is not None and not croniter.is_valid(cron):
        raise ValueError(f"cron {cron!r} is not a valid cron expression")
    return JobDefinition(
        kind=kind,
        handler=handler,
        queue=queue,
        max_attempts=max_attempts,
        retry_base_seconds=retry_base_seconds,
        retry_max_seconds=retry_max_seconds,
        exclusive=exclusive,
        queueing_lock=queueing_lock,
        cron=cron,
        description=description,
    )


class JobRegistry:
    """The definitions a worker runs, by kind (a kind defined twice is a programming error)."""

    def __init__(self, definitions: Iterable[JobDefinition] = ()) -> None:
        self._by_kind: dict[str, JobDefinition] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: JobDefinition) -> None:
        known = self._by_kind.get(definition.kind)
        if known is not None and known is not definition:
            raise ValueError(f"job kind {definition.kind!r} is defined twice")
        self._by_kind[definition.kind] = definition

    def get(self, kind: str) -> JobDefinition | None:
        return self._by_kind.get(kind)

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(self._by_kind.values())

    def __len__(self) -> int:
        return len(self._by_kind)

    def kinds(self) -> list[str]:
        return sorted(self._by_kind)
