"""The worker process's composition: the events relay and consumers it starts with every
handler and job, and what its /health says before it is registered."""

from __future__ import annotations

from ehr.entrypoints.worker import WORKER_HANDLERS, WORKER_JOBS, WorkerState, event_runners
from ehr.platform import events, webhooks


def test_the_worker_runs_the_relay_and_consumers_of_every_handler() -> None:
    names = [run.__name__ for run in event_runners()]
    assert names == ["run_relay", "run_consumers"]
    assert {h.name for h in WORKER_HANDLERS} >= {h.name for h in webhooks.HANDLERS}
    kinds = {definition.kind for definition in WORKER_JOBS}
    assert {d.kind for d in events.EVENT_JOBS} <= kinds
    assert {d.kind for d in webhooks.JOBS} <= kinds


def test_health_is_not_ready_before_the_worker_registers() -> None:
    state = WorkerState()
    assert not state.ready()
    assert state.document() == {
        "status": "starting",
        "worker_id": None,
        "running_jobs": 0,
        "queue": {},
    }
