"""What a HAPI notification yields: the change it reports and the events of that change."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from ehr.core.config import FhirChangesSettings
from ehr.platform.fhir_changes import (
    FEED_TAG,
    HOOK_SECRET_HEADER,
    RESULTS_TAG,
    NotificationError,
    change_events,
    event_id,
    hook_secret,
    read_change,
    secret_matches,
    wanted_subscriptions,
)

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def observation(version: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "meta": {"versionId": version},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
        "subject": {"reference": "Patient/p-1"},
        **extra,
    }


def critical(code: str = "HH", **extra: Any) -> dict[str, Any]:
    return observation(interpretation=[{"coding": [{"system": V3, "code": code}]}], **extra)


def take(body: dict[str, Any] | None, *, method: str = "PUT", if_match: str | None = None):  # type: ignore[no-untyped-def]
    resource_type = "Observation" if body is None else body["resourceType"]
    resource_id = "obs-1" if body is None else body["id"]
    return read_change(
        "north", resource_type, resource_id, method=method, body=body, if_match=if_match
    )


def test_a_create_is_one_fhir_changed_event_with_ids_only() -> None:
    (event,) = change_events(take(observation()))
    assert event.type == "fhir.changed"
    assert event.tenant == "north"
    assert event.resource == "Observation/obs-1"
    assert event.resource_version == "1"
    assert event.subject == "Patient/p-1"
    assert event.data == {"operation": "create"}
    assert event.id == event_id("north", "fhir.changed", "Observation/obs-1", "1")


def test_a_later_version_is_an_update_and_another_event() -> None:
    (first,) = change_events(take(observation("1")))
    (second,) = change_events(take(observation("2")))
    assert second.data == {"operation": "update"}
    assert first.id != second.id


def test_the_same_notification_twice_names_the_same_events() -> None:
    once = [e.id for e in change_events(take(critical()))]
    again = [e.id for e in change_events(take(critical()))]
    assert once == again
    assert len(once) == 2


def test_the_event_id_depends_on_the_tenant() -> None:
    assert event_id("north", "fhir.changed", "Patient/1", "1") != event_id(
        "south", "fhir.changed", "Patient/1", "1"
    )


@pytest.mark.parametrize("code", ["HH", "LL", "AA"])
def test_a_critical_observation_is_also_result_critical(code: str) -> None:
    changed, alert = change_events(take(critical(code)))
    assert changed.type == "fhir.changed"
    assert alert.type == "result.critical"
    assert alert.subject == "Patient/p-1"
    assert alert.resource == "Observation/obs-1"
    assert alert.data == {
        "critical": True,
        "interpretation": code,
        "code": "http://loinc.org|2823-3",
    }


def test_v2_table_0078_codes_count_as_critical() -> None:
    body = observation(
        interpretation=[
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0078", "code": "LL"}]}
        ]
    )
    assert [e.type for e in change_events(take(body))] == ["fhir.changed", "result.critical"]


@pytest.mark.parametrize(
    "body",
    [
        observation(interpretation=[{"coding": [{"system": V3, "code": "H"}]}]),
        observation(interpretation=[{"coding": [{"system": "urn:other", "code": "HH"}]}]),
        critical(status="registered"),
        critical(status="entered-in-error"),
        critical(status="cancelled"),
        {**critical(), "subject": {"reference": "Group/g-1"}},
        {k: v for k, v in critical().items() if k != "subject"},
    ],
    ids=[
        "high-not-critical",
        "other-system",
        "registered",
        "entered-in-error",
        "cancelled",
        "group-subject",
        "no-subject",
    ],
)
def test_no_critical_event_without_a_reportable_critical_result_about_a_patient(
    body: dict[str, Any],
) -> None:
    assert [e.type for e in change_events(take(body))] == ["fhir.changed"]


def test_the_results_modules_first_version_emits_no_second_critical_event() -> None:
    tagged = critical(meta={"versionId": "1", "tag": [dict(RESULTS_TAG)]})
    assert [e.type for e in change_events(take(tagged))] == ["fhir.changed"]
    # An amendment of it through /fhir is a new statement: it alerts.
    amended = critical(meta={"versionId": "2", "tag": [dict(RESULTS_TAG)]}, status="amended")
    assert [e.type for e in change_events(take(amended))] == ["fhir.changed", "result.critical"]


def test_a_delete_has_no_version_and_no_subject() -> None:
    (event,) = change_events(take(None, method="DELETE"))
    assert event.data == {"operation": "delete"}
    assert event.resource_version is None
    assert event.subject is None
    assert event.id == event_id("north", "fhir.changed", "Observation/obs-1", None)


def test_the_version_may_come_from_if_match() -> None:
    body = {k: v for k, v in observation().items() if k != "meta"}
    assert take(body, if_match='W/"7"').version == "7"
    with pytest.raises(NotificationError):
        take(body)


@pytest.mark.parametrize(
    ("resource_type", "resource_id", "body"),
    [
        ("observation", "obs-1", observation()),
        ("Observation", "obs 1", observation()),
        ("Observation", "obs-2", observation()),
        ("Patient", "obs-1", observation()),
        ("Observation", "obs-1", None),
    ],
)
def test_malformed_notifications_are_refused(
    resource_type: str, resource_id: str, body: dict[str, Any] | None
) -> None:
    with pytest.raises(NotificationError):
        read_change("north", resource_type, resource_id, method="PUT", body=body, if_match=None)


@pytest.mark.parametrize(
    ("element", "reference"),
    [
        ("subject", "Patient/p-9"),
        ("patient", "Patient/p-9"),
        ("for", "Patient/p-9"),
        ("subject", "http://x/fhir/Patient/p-9/_history/2"),
    ],
)
def test_the_subject_is_the_patient_the_resource_names(element: str, reference: str) -> None:
    body = {
        "resourceType": "Task",
        "id": "t-1",
        "meta": {"versionId": "1"},
        element: {"reference": reference},
    }
    (event,) = change_events(
        read_change("north", "Task", "t-1", method="PUT", body=body, if_match=None)
    )
    assert event.subject == "Patient/p-9"


def test_a_patients_own_change_concerns_that_patient() -> None:
    body = {"resourceType": "Patient", "id": "p-3", "meta": {"versionId": "4"}}
    (event,) = change_events(
        read_change("north", "Patient", "p-3", method="PUT", body=body, if_match=None)
    )
    assert event.subject == "Patient/p-3"


def test_nothing_but_ids_and_codes_leaves_the_body() -> None:
    body = critical(valueQuantity={"value": 6.9, "unit": "mmol/L"}, note=[{"text": "called Dr X"}])
    for event in change_events(take(body)):
        dumped = event.to_json()
        assert "6.9" not in dumped
        assert "Dr X" not in dumped


def test_each_tenant_has_its_own_secret_compared_exactly() -> None:
    key = SecretStr("k" * 48)
    north = hook_secret(key, "north")
    assert north != hook_secret(key, "south")
    assert north != hook_secret(SecretStr("j" * 48), "north")
    assert secret_matches(key, "north", north)
    assert not secret_matches(key, "south", north)
    assert not secret_matches(key, "north", None)
    assert not secret_matches(key, "north", north[:-1])


def test_one_subscription_per_watched_type_sends_the_resource_and_deletes() -> None:
    settings = FhirChangesSettings(
        notify_url="http://worker:9465/internal/fhir-notifications/",
        resource_types=["Patient", "Observation"],
    )
    key = SecretStr("k" * 48)
    wanted = wanted_subscriptions(settings, key, "north")
    assert set(wanted) == {"Patient", "Observation"}
    document = wanted["Observation"]
    assert document["criteria"] == "Observation?"
    assert document["meta"]["tag"] == [dict(FEED_TAG)]
    channel = document["channel"]
    assert channel["type"] == "rest-hook"
    assert channel["endpoint"] == "http://worker:9465/internal/fhir-notifications/north"
    assert channel["payload"] == "application/fhir+json"
    assert channel["header"] == [f"{HOOK_SECRET_HEADER}: {hook_secret(key, 'north')}"]
    assert channel["extension"][0]["valueBoolean"] is True
