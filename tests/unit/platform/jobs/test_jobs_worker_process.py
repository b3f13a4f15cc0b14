"""The worker process's hooks: the events runners it starts when the events package offers
them, and what its /health says before it is registered."""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

import pytest

from ehr.entrypoints import worker as worker_module
from ehr.entrypoints.worker import EVENTS_PACKAGE, WorkerState, event_runners


async def run_relay(_settings: Any, *, stop: Any) -> None:
    del stop


def test_no_events_package_means_no_event_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    assert event_runners() == []


def test_the_events_relay_and_consumers_are_started_when_offered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = types.ModuleType(EVENTS_PACKAGE)
    events.run_relay = run_relay  # type: ignore[attr-defined]
    events.run_consumers = "not callable"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, EVENTS_PACKAGE, events)
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: object())
    assert worker_module.event_runners() == [run_relay]


def test_health_is_not_ready_before_the_worker_registers() -> None:
    state = WorkerState()
    assert not state.ready()
    assert state.document() == {
        "status": "starting",
        "worker_id": None,
        "running_jobs": 0,
        "queue": {},
    }
