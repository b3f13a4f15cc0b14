"""The recording use case against a stand-in FHIR client: everything in ONE transaction (the
results, the report, the Task, the order's completion with its If-Match), the order refusals,
and HAPI down → the 503 error and nothing else sent."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ehr.fhir import FhirConflict, FhirResourceNotFound, FhirUnavailable, TenantFhirClient
from ehr.modules.results.errors import OrderChanged, OrderNotActive, OrderNotFound
from ehr.modules.results.policy import TenantResultPolicy
from ehr.modules.results.schemas import ResultRecord
from ehr.modules.results.service import ResultService
from ehr.platform.auth.principal import Principal


class FakeFhir:
    """Reads from a dict; records every transaction; answers it as HAPI would (ids assigned)."""

    tenant = "DEFAULT"

    def __init__(self, resources: dict[str, dict[str, Any]], fail: Exception | None = None):
        self.resources = resources
        self.fail = fail
        self.transactions: list[dict[str, Any]] = []

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        found = self.resources.get(f"{resource_type}/{resource_id}")
        if found is None:
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return found

    async def transaction(
        self, bundle: dict[str, Any], *, return_resources: bool = False
    ) -> dict[str, Any]:
        self.transactions.append(bundle)
        if self.fail is not None:
            raise self.fail
        entries = []
        for entry in bundle["entry"]:
            resource = dict(entry["resource"])
            resource.setdefault("id", uuid.uuid4().hex[:12])
            resource["meta"] = {"versionId": "1"}
            entries.append({"resource": resource, "response": {"status": "201 Created"}})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _principal() -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant="DEFAULT",
        tenant_id=uuid.uuid4(),
        roles=frozenset({"lab_technician"}),
        username="lab.tech",
    )


def _order(status: str = "active", patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "meta": {"versionId": "4"},
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "requester": {"display": "dr.x"},
        "locationReference": [{"reference": "Location/ward-3"}],
    }


def _payload(potassium: float, **extra: Any) -> ResultRecord:
    return ResultRecord.model_validate(
        {
            "order_id": "sr1",
            "code": "24323-8",
            "effective": "2026-12-07T06:30:00Z",
            "observations": [
                {"code": "2823-3", "quantity": {"value": potassium, "unit": "mmol/L"}},
                {"code": "2951-2", "quantity": {"value": 140, "unit": "mmol/L"}},
            ],
            **extra,
        }
    )


def _service(fhir: FakeFhir) -> ResultService:
    client: TenantFhirClient = fhir  # type: ignore[assignment]
    return ResultService(client, principal=_principal(), policy=TenantResultPolicy())


async def test_one_transaction_holds_results_report_task_and_the_order_completion() -> None:
    fhir = FakeFhir({"ServiceRequest/sr1": _order()})
    view = await _service(fhir).record("p1", _payload(7.1))
    assert len(fhir.transactions) == 1
    entries = fhir.transactions[0]["entry"]
    kinds = [(e["resource"]["resourceType"], e["request"]["method"]) for e in entries]
    assert kinds == [
        ("Observation", "POST"),
        ("Observation", "POST"),
        ("DiagnosticReport", "POST"),
        ("Task", "POST"),
        ("ServiceRequest", "PUT"),
    ]
    observation_urls = [e["fullUrl"] for e in entries[:2]]
    report, task, order = entries[2], entries[3], entries[4]
    assert [r["reference"] for r in report["resource"]["result"]] == observation_urls
    assert task["resource"]["focus"] == {"reference": report["fullUrl"]}
    assert [i["valueReference"]["reference"] for i in task["resource"]["input"]] == [
        observation_urls[0]
    ]
    assert task["resource"]["location"] == {"reference": "Location/ward-3"}
    assert task["resource"]["owner"] == {"display": "dr.x"}
    assert order["resource"]["status"] == "completed"
    assert order["request"]["ifMatch"] == 'W/"4"'
    assert view.critical is True
    assert view.acknowledgement is not None


async def test_a_preliminary_report_leaves_the_order_and_a_normal_one_opens_no_task() -> None:
    fhir = FakeFhir({"ServiceRequest/sr1": _order()})
    view = await _service(fhir).record("p1", _payload(4.0, status="preliminary"))
    kinds = [e["resource"]["resourceType"] for e in fhir.transactions[0]["entry"]]
    assert kinds == ["Observation", "Observation", "DiagnosticReport"]
    assert view.acknowledgement is None


@pytest.mark.parametrize(
    ("order", "refusal"),
    [
        (None, OrderNotFound),
        (_order(patient="someone-else"), OrderNotFound),
        (_order(status="revoked"), OrderNotActive),
        (_order(status="on-hold"), OrderNotActive),
        (_order(status="completed"), OrderNotActive),
    ],
)
async def test_orders_that_take_no_results(
    order: dict[str, Any] | None, refusal: type[Exception]
) -> None:
    fhir = FakeFhir({"ServiceRequest/sr1": order} if order is not None else {})
    with pytest.raises(refusal):
        await _service(fhir).record("p1", _payload(4.0))
    assert fhir.transactions == []


async def test_an_order_changed_meanwhile_fails_the_whole_transaction() -> None:
    fhir = FakeFhir({"ServiceRequest/sr1": _order()}, fail=FhirConflict("version conflict"))
    with pytest.raises(OrderChanged) as refused:
        await _service(fhir).record("p1", _payload(4.0))
    assert refused.value.code == "order_changed"


async def test_hapi_down_is_503_and_one_attempt() -> None:
    fhir = FakeFhir({"ServiceRequest/sr1": _order()}, fail=FhirUnavailable("connection refused"))
    with pytest.raises(FhirUnavailable) as failed:
        await _service(fhir).record("p1", _payload(4.0))
    assert failed.value.status_code == 503
    assert len(fhir.transactions) == 1
