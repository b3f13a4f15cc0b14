"""The event envelope: what it accepts, and that ``data`` carries ids and codes only (no PHI)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ehr.core.request_context import request_id_var
from ehr.platform.events import EVENT_SCHEMA_VERSION, Event, new_event


def valid(**overrides: object) -> Event:
    fields: dict[str, object] = {
        "type": "result.critical",
        "tenant": "acme",
        "subject": "Patient/123",
        "resource": "Observation/obs-1",
        "resource_version": "2",
        "request_id": "req-1",
        "data": {"interpretation": "HH", "code": "http://loinc.org|2823-3", "count": 2},
    }
    fields.update(overrides)
    return Event.model_validate(fields)


def test_a_valid_event_round_trips_through_json() -> None:
    event = valid()
    again = Event.from_json(event.to_json())
    assert again == event
    assert isinstance(event.id, uuid.UUID)
    assert event.schema_version == EVENT_SCHEMA_VERSION
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize("type_", ["order.signed", "fhir.changed", "patient.updated", "a.b.c"])
def test_dotted_types_are_accepted(type_: str) -> None:
    assert valid(type=type_).type == type_


@pytest.mark.parametrize(
    "type_", ["order", "Order.Signed", "order signed", ".x", "x.", "a.b.c.d.e"]
)
def test_other_types_are_refused(type_: str) -> None:
    with pytest.raises(ValidationError):
        valid(type=type_)


@pytest.mark.parametrize(
    "reference",
    ["Patient", "patient/1", "Patient/1 2", "Patient/John Smith", "Patient/" + "x" * 65],
)
def test_subject_and_resource_are_references(reference: str) -> None:
    with pytest.raises(ValidationError):
        valid(subject=reference)
    with pytest.raises(ValidationError):
        valid(resource=reference)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "John Smith"},  # free text: a space
        {"note": "x" * 129},  # longer than a code
        {"value": 7.2},  # a measured value is clinical data
        {"nested": {"a": "b"}},
        {"Bad Key": "x"},
        {"list": ["ok", "not ok"]},
        {f"k{i}": i for i in range(33)},
        {"list": list(range(51))},
    ],
)
def test_data_holds_only_references_codes_ints_and_bools(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        valid(data=data)


def test_data_accepts_references_codes_ints_bools_none_and_lists() -> None:
    data = {
        "order": "ServiceRequest/9",
        "codes": ["http://loinc.org|2823-3", "HH"],
        "count": 3,
        "stat": True,
        "previous": None,
    }
    assert valid(data=data).data == data


def test_unknown_fields_and_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        valid(patient_name="x")
    with pytest.raises(ValidationError):
        valid(occurred_at=datetime(2026, 1, 1))


def test_times_are_kept_in_utc() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert valid(occurred_at=local).occurred_at == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_a_newer_schema_version_is_refused() -> None:
    with pytest.raises(ValidationError):
        valid(schema_version=EVENT_SCHEMA_VERSION + 1)


def test_the_envelope_is_immutable() -> None:
    event = valid()
    with pytest.raises(ValidationError):
        event.type = "order.signed"  # type: ignore[misc]


def test_new_event_takes_the_current_request_id_when_it_fits() -> None:
    token = request_id_var.set("abc-123")
    try:
        assert new_event("order.signed", tenant="acme").request_id == "abc-123"
    finally:
        request_id_var.reset(token)
    token = request_id_var.set("has spaces in it")
    try:
        assert new_event("order.signed", tenant="acme").request_id is None
    finally:
        request_id_var.reset(token)
