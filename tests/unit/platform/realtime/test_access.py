"""Who may see which event: tenant, the permission of the event's type, the compartment."""

from __future__ import annotations

import uuid

import pytest
from support.principals import make_principal

from ehr.platform.auth.principal import Principal
from ehr.platform.realtime.access import (
    Subscription,
    compartment_of,
    may_see,
    needed_permissions,
    sees_any_event,
)

TENANT = "alpha"
OWN = "Patient/p1"


def patient_principal(patient_id: str | None = "p1") -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant=TENANT,
        tenant_id=uuid.uuid4(),
        roles=frozenset({"patient"}),
        patient_id=patient_id,
    )


def api_key(*permissions: str) -> Principal:
    return Principal(
        kind="api_key",
        subject=uuid.uuid4(),
        tenant=TENANT,
        tenant_id=uuid.uuid4(),
        roles=frozenset(),
        key_permissions=frozenset(permissions),
    )


def sees(principal: Principal, event_type: str, subject: str | None = OWN, **kw: str) -> bool:
    return may_see(
        principal,
        event_type,
        subject,
        kw.get("resource"),
        tenant=kw.get("tenant", TENANT),
    )


@pytest.mark.parametrize(
    ("role", "event_type", "expected"),
    [
        ("physician", "result.critical", True),
        ("nurse", "result.critical", True),
        ("lab_technician", "result.critical", True),
        ("front_desk", "result.critical", False),
        ("billing", "result.critical", False),
        ("admin", "result.critical", False),
        ("physician", "order.signed", True),
        ("front_desk", "order.signed", False),
        ("front_desk", "patient.updated", True),
        ("admin", "patient.updated", False),
        ("physician", "note.signed", True),
        ("pharmacist", "medication.dispensed", True),
    ],
)
def test_each_type_needs_the_permission_that_reads_its_resource(
    role: str, event_type: str, expected: bool
) -> None:
    assert sees(make_principal(TENANT, role), event_type) is expected


def test_an_unknown_type_reaches_nobody() -> None:
    for role in ("physician", "admin", "nurse"):
        assert not sees(make_principal(TENANT, role), "billing_secret.leaked")
    assert needed_permissions("job.finished", None) == frozenset()


def test_another_tenants_event_reaches_nobody_of_this_tenant() -> None:
    assert not sees(make_principal(TENANT, "physician"), "result.critical", tenant="beta")


def test_a_patient_only_hears_of_its_own_compartment() -> None:
    me = patient_principal("p1")
    assert compartment_of(me) == "p1"
    assert sees(me, "result.critical", "Patient/p1")
    assert not sees(me, "result.critical", "Patient/p2")
    assert not sees(me, "result.critical", None)  # no subject: not provably its own
    assert not sees(me, "order.signed", "Patient/p1")  # the portal role has no order:read


def test_a_patient_without_a_linked_patient_hears_nothing() -> None:
    orphan = patient_principal(None)
    assert compartment_of(orphan) == ""
    assert not sees(orphan, "result.critical", "Patient/")
    assert not sees(orphan, "result.critical", None)


def test_a_clinician_who_is_also_a_patient_is_not_confined() -> None:
    both = make_principal(TENANT, "physician", "patient")
    assert compartment_of(both) is None
    assert sees(both, "result.critical", "Patient/anyone")


def test_an_api_key_sees_by_its_explicit_permissions() -> None:
    assert sees(api_key("result:read"), "result.critical")
    assert not sees(api_key("result:read"), "order.signed")
    assert not sees(api_key("patient:write"), "patient.updated")


def test_fhir_changes_need_read_on_the_changed_resource_type() -> None:
    lab = make_principal(TENANT, "lab_technician")
    front = make_principal(TENANT, "front_desk")
    assert sees(lab, "fhir.changed", resource="Observation/1")
    assert not sees(front, "fhir.changed", resource="Observation/1")
    assert sees(front, "fhir.changed", resource="Patient/1")
    assert not sees(lab, "fhir.changed", resource="AuditEvent/1")  # nobody's read scope
    assert not sees(lab, "fhir.changed", resource=None)


def test_a_principal_no_event_may_reach_is_refused_up_front() -> None:
    assert sees_any_event(make_principal(TENANT, "front_desk"))
    assert not sees_any_event(make_principal(TENANT, "admin"))
    assert not sees_any_event(api_key("audit:view"))


def test_the_clients_filter_narrows_by_type_and_patient() -> None:
    everything = Subscription()
    assert everything.wants("order.signed", None)
    results = Subscription.of(types=["result.*"])
    assert results.wants("result.critical", OWN)
    assert not results.wants("order.signed", OWN)
    exact = Subscription.of(types=["result.critical"])
    assert not exact.wants("result.recorded", OWN)
    one = Subscription.of(patients=["p1"])
    assert one.wants("result.critical", "Patient/p1")
    assert not one.wants("result.critical", "Patient/p2")
    assert not one.wants("result.critical", None)
    assert not Subscription.of(types=["resultx.*"]).wants("result.critical", OWN)
