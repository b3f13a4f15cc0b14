"""The sign checks' block/override logic, the DetectedIssue of an override, the duplicate-order
check, and the medication-safety findings through the engine's CDS entry point."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter

from ehr.modules import orders
from ehr.modules.medication_safety import (
    RXNORM_SYSTEM,
    MedicationChecks,
    PatientRecord,
    get_knowledge,
)

# The default display policy (what medication_checks_for gives a tenant without one saved).
from ehr.modules.medication_safety.policy import default_policy
from ehr.modules.orders.errors import OrderSignBlocked
from ehr.modules.orders.findings import (
    DUPLICATE_ORDER_RULE,
    decide,
    detected_issue,
    duplicate_findings,
    medication_findings,
)
from ehr.modules.orders.policy import DEFAULT_POLICY
from ehr.modules.orders.schemas import Finding, Override
from ehr.platform.auth.principal import Principal

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SIGNER = {"identifier": {"system": "urn:ehr:user", "value": "u-2"}, "display": "dr.two"}
LOINC = "http://loinc.org"


def _finding(rule: str, display: str = "interruptive") -> Finding:
    return Finding(
        rule=rule,
        category="drug-drug",
        severity="major",
        display=display,  # type: ignore[arg-type]
        summary=f"{rule} summary",
        detail="detail",
        implicated=["MedicationRequest/new", "MedicationRequest/old"],
    )


def test_no_interruptive_finding_signs_and_reports_the_passive_ones() -> None:
    passive = _finding("r-passive", "passive")
    decision = decide([passive], None)
    assert decision.findings == (passive,)
    assert decision.overridden == ()


def test_interruptive_findings_block_without_an_override() -> None:
    with pytest.raises(OrderSignBlocked) as raised:
        decide([_finding("r1"), _finding("r2", "passive")], None)
    error = raised.value
    assert (error.status_code, error.code) == (409, "order-sign-blocked")
    assert error.extra["blocking_rules"] == ["r1"]
    assert [f["rule"] for f in error.extra["findings"]] == ["r1", "r2"]


def test_an_override_with_a_reason_covers_every_interruptive_finding() -> None:
    decision = decide([_finding("r1"), _finding("r2", "passive")], Override(reason="monitor INR"))
    assert [f.rule for f in decision.overridden] == ["r1"]


def test_an_override_naming_rules_must_name_every_blocking_one() -> None:
    findings = [_finding("r1"), _finding("r2")]
    with pytest.raises(OrderSignBlocked) as raised:
        decide(findings, Override(reason="x", rules=["r1"]))
    assert raised.value.extra["not_overridden"] == ["r2"]
    assert len(decide(findings, Override(reason="x", rules=["r1", "r2"])).overridden) == 2


def test_an_override_is_recorded_as_a_detected_issue_implicating_the_order() -> None:
    issue = detected_issue(
        _finding("warfarin-nsaid"),
        order_reference="MedicationRequest/new",
        patient_id="p1",
        signer=SIGNER,
        reason="Benefit outweighs risk; INR checked",
        now=NOW,
    )
    assert issue["resourceType"] == "DetectedIssue"
    assert issue["status"] == "final"
    assert issue["severity"] == "high"
    assert issue["patient"] == {"reference": "Patient/p1"}
    assert issue["implicated"][0] == {"reference": "MedicationRequest/new"}
    assert {"reference": "MedicationRequest/old"} in issue["implicated"]
    codes = {c["code"] for c in issue["code"]["coding"]}
    assert {"DRG", "warfarin-nsaid"} <= codes
    mitigation = issue["mitigation"][0]
    assert mitigation["author"] == SIGNER
    assert mitigation["action"]["text"] == "Benefit outweighs risk; INR checked"


def _service_request(
    ident: str, code: str, *, status: str = "active", hours_ago: float = 2
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": ident,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}], "text": "Potassium"},
        "authoredOn": (NOW - dt.timedelta(hours=hours_ago)).isoformat(),
    }


def test_a_placed_order_with_the_same_code_within_the_window_is_a_duplicate() -> None:
    draft = _service_request("new", "2823-3", status="draft", hours_ago=0)
    existing = [
        _service_request("old", "2823-3", hours_ago=3),
        _service_request("ancient", "2823-3", hours_ago=30),
        _service_request("revoked", "2823-3", status="revoked", hours_ago=1),
        _service_request("other", "2345-7", hours_ago=1),
        draft,
    ]
    found = duplicate_findings(
        draft,
        existing,
        code_field="code",
        window=dt.timedelta(hours=24),
        display="interruptive",
        now=NOW,
    )
    assert len(found) == 1
    assert found[0].rule == DUPLICATE_ORDER_RULE
    assert found[0].display == "interruptive"
    assert found[0].implicated == ["ServiceRequest/new", "ServiceRequest/old"]
    assert "3 h ago" in found[0].summary
    none = duplicate_findings(
        draft,
        existing[1:],
        code_field="code",
        window=dt.timedelta(hours=24),
        display="passive",
        now=NOW,
    )
    assert none == []


PHYSICIAN = Principal(
    kind="user",
    subject=uuid.UUID(int=7),
    tenant="DEFAULT",
    tenant_id=uuid.UUID(int=8),
    roles=frozenset({"physician"}),
    username="dr.seven",
)
WARFARIN_5MG_TABLET = "855332"
IBUPROFEN_600MG_TABLET = "197806"


def test_a_medication_order_is_checked_by_the_cds_order_sign_engine() -> None:
    """The same entry point as CDS order-sign (MedicationChecks.check_orders), under the
    default display policy: warfarin (active) + ibuprofen (the draft) interrupts."""
    document = {
        "kind": "medication",
        "medication": {"system": RXNORM_SYSTEM, "code": IBUPROFEN_600MG_TABLET},
        "dosage": {
            "dose": {"value": 600, "unit": "mg"},
            "route": {"system": "http://snomed.info/sct", "code": "26643006"},
            "frequency": 3,
        },
    }
    order = TypeAdapter(orders.OrderCreate).validate_python(document)
    draft = {**orders.build_draft("p1", order, PHYSICIAN), "id": "new"}
    record = PatientRecord(
        patient={"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"},
        requests=[
            {
                "resourceType": "MedicationRequest",
                "id": "old",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": {
                    "coding": [{"system": RXNORM_SYSTEM, "code": WARFARIN_5MG_TABLET}]
                },
            }
        ],
    )
    checks = MedicationChecks(get_knowledge(), default_policy())
    found = checks.check_orders(record, [draft], now=NOW)
    findings = medication_findings(found.result)
    assert findings, "warfarin + ibuprofen is a known interaction"
    blocking = [f for f in findings if f.display == "interruptive"]
    assert blocking
    assert "MedicationRequest/new" in blocking[0].implicated
    assert "MedicationRequest/old" in blocking[0].implicated
    with pytest.raises(OrderSignBlocked):
        decide(findings, None)


def test_the_default_policy_checks_lab_duplicates_for_24_hours_and_interrupts() -> None:
    assert DEFAULT_POLICY.lab_duplicate_window_hours == 24
    assert DEFAULT_POLICY.duplicate_display == "interruptive"
