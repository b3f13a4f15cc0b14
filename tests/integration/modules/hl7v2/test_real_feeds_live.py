"""Real-feed-style HL7 v2 messages against the real HAPI: every converted resource passes
``$validate`` (no error or fatal issue), every transaction Bundle is accepted in a partition of
its own, and a replay, a resend and a correction update what the first message wrote instead of
duplicating it. The messages are the builders of ``tests/unit/modules/hl7v2/real_feed_messages``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support.hapi_data import delete_resources

from ehr.core.config import Settings
from ehr.core.errors import AppError
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.hl7v2.parsing import parse_message
from ehr.modules.hl7v2.to_fhir import Conversion, ConversionContext, to_transaction
from ehr.platform.tenancy.partitions import create_partition, delete_partition, list_partitions

pytestmark = pytest.mark.integration


def _builders() -> ModuleType:
    path = Path(__file__).parents[3] / "unit" / "modules" / "hl7v2" / "real_feed_messages.py"
    spec = importlib.util.spec_from_file_location("real_feed_messages", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("real_feed_messages", module)
    spec.loader.exec_module(module)
    return module


feeds = _builders()

MESSAGES: dict[str, Callable[[], str | bytes]] = {
    "adt_a01_epic": feeds.adt_a01_epic,
    "adt_a08_authorities": feeds.adt_a08_authorities,
    "adt_a40_merge": feeds.adt_a40_merge,
    "adt_a04_latin1": feeds.adt_a04_latin1,
    "adt_a03_cerner_lf": feeds.adt_a03_cerner_lf,
    "adt_a04_v2.3": lambda: feeds.adt_a04_version("2.3", "V23"),
    "adt_a04_v2.7": lambda: feeds.adt_a04_version("2.7", "V27"),
    "adt_a04_v2.8": lambda: feeds.adt_a04_version("2.8", "V28"),
    "oru_lab": feeds.oru_lab,
    "oru_continuation_lines": feeds.oru_continuation_lines,
    "oru_long": lambda: feeds.oru_long(results=60),
    "orm_o01_nw": lambda: feeds.orm_o01("NW"),
    "orm_o01_ca": lambda: feeds.orm_o01("CA", "ORM0002"),
    "orm_o01_xo": lambda: feeds.orm_o01("XO", "ORM0003"),
    "oml_o21": feeds.oml_o21,
    "siu_s12": feeds.siu,
    "siu_s14": lambda: feeds.siu("S14", "SIU0002", start="1000"),
    "siu_s15": lambda: feeds.siu("S15", "SIU0003"),
    "vxu_v04": feeds.vxu_v04,
    "mdm_t02": feeds.mdm_t02,
}

_CLINICAL = (
    "Patient", "Encounter", "RelatedPerson", "AllergyIntolerance", "Condition", "Practitioner",
    "Location", "ServiceRequest", "DiagnosticReport", "Observation", "Immunization",
    "Appointment", "DocumentReference",
)  # fmt: skip


def convert(raw: str | bytes, message_id: str) -> Conversion:
    return to_transaction(
        parse_message(raw),
        ConversionContext(message_id=message_id, received_at=datetime.now(UTC), tenant="test"),
    )


@pytest.fixture(scope="module")
async def fhir_client(settings: Settings) -> AsyncIterator[FhirClient]:
    client = FhirClient(settings.fhir)
    await client.ping()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def partition(fhir_client: FhirClient) -> AsyncIterator[TenantFhirClient]:
    """A HAPI partition of a test tenant of its own, removed with its data at the end."""
    name = f"hl7rf-{uuid.uuid4().hex[:10]}"
    await create_partition(
        fhir_client,
        partition_id=random.randint(1_500_000_000, 2_000_000_000),
        name=name,
        description="HL7 v2 real-feed tests",
    )
    tenant = fhir_client.for_tenant(name)
    try:
        yield tenant
    finally:
        await _remove_everything(tenant)
        found = {p.name: p.id for p in await list_partitions(fhir_client)}
        if name in found:
            await delete_partition(fhir_client, found[name])


async def _remove_everything(tenant: TenantFhirClient) -> None:
    """Empty the partition. Two kinds of references go both ways — a merge's Patients
    (``replaces`` / ``replaced-by``) and an Encounter with its diagnoses' Conditions — which
    HAPI's referential integrity will not delete; they are cut first."""
    await delete_resources(tenant, order=["Provenance", "MessageHeader"])
    for resource_type, element in (("Patient", "link"), ("Encounter", "diagnosis")):
        bundle = await tenant.search(resource_type, {"_count": "500"}, single_page=True)
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            if resource.pop(element, None) is not None:
                await tenant.update(resource)
    await delete_resources(tenant)


async def _issues(tenant_fhir: TenantFhirClient, resource: dict[str, Any]) -> list[str]:
    try:
        outcome = await tenant_fhir.operation(
            "$validate", resource_type=resource["resourceType"], body=resource, method="POST"
        )
    except AppError as error:  # HAPI answers 412 when the resource has errors
        outcome = dict(getattr(error, "extra", {}) or {}).get("operation_outcome") or {}
        if not outcome:
            raise
    return [
        f"{issue.get('severity')}: {issue.get('diagnostics')} @ {issue.get('expression')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") in {"error", "fatal"}
    ]


async def _count(tenant: TenantFhirClient, resource_type: str, **params: str) -> int:
    bundle = await tenant.search(resource_type, {**params, "_summary": "count"}, single_page=True)
    return int(bundle.get("total", 0))


async def _counts(tenant: TenantFhirClient) -> dict[str, int]:
    return {
        resource_type: await _count(tenant, resource_type)
        for resource_type in (*_CLINICAL, "MessageHeader", "Provenance")
    }


def _statuses(response: dict[str, Any]) -> list[str]:
    return [str(entry.get("response", {}).get("status", "")) for entry in response["entry"]]


@pytest.mark.parametrize("name", sorted(MESSAGES))
async def test_every_resource_validates(fhir_client: FhirClient, name: str) -> None:
    tenant_fhir = fhir_client.for_tenant(fhir_client.default_tenant)
    conversion = convert(MESSAGES[name](), "a" * 32)
    problems: dict[str, list[str]] = {}
    for entry in conversion.bundle["entry"]:
        resource = entry["resource"]
        issues = await _issues(tenant_fhir, resource)
        if issues:
            problems[f"{resource['resourceType']} {entry['request']['url']}"] = issues
    assert problems == {}


async def test_transactions_are_accepted_and_replays_and_resends_do_not_duplicate(
    partition: TenantFhirClient,
) -> None:
    for number, name in enumerate(sorted(MESSAGES)):
        response = await partition.transaction(convert(MESSAGES[name](), f"m{number:031d}").bundle)
        statuses = _statuses(response)
        assert statuses, name
        assert all(s.startswith(("200", "201")) for s in statuses), (name, statuses)
    first = await _counts(partition)
    # One Patient per person: the result, order, schedule and document feeds found the
    # registered Patient by its MRN instead of creating their own.
    assert first["Patient"] == 8
    assert first["Immunization"] == 4
    assert first["Observation"] > 60

    # The same inbox rows converted again (a replay after a crash): nothing new at all.
    for number, name in enumerate(sorted(MESSAGES)):
        await partition.transaction(convert(MESSAGES[name](), f"m{number:031d}").bundle)
    assert await _counts(partition) == first

    # The sender resends everything as new messages (new inbox rows): only the messages'
    # own MessageHeader and Provenance are new.
    for number, name in enumerate(sorted(MESSAGES)):
        await partition.transaction(convert(MESSAGES[name](), f"r{number:031d}").bundle)
    resent = await _counts(partition)
    assert {k: v for k, v in resent.items() if k in _CLINICAL} == {
        k: v for k, v in first.items() if k in _CLINICAL
    }
    assert resent["MessageHeader"] == first["MessageHeader"] + len(MESSAGES)


async def test_a_corrected_result_updates_the_observation_it_corrects(
    partition: TenantFhirClient,
) -> None:
    await partition.transaction(convert(feeds.oru_lab(), "c" * 32).bundle)
    corrected = feeds.oru_lab("QL000124", glucose="112", glucose_status="C")
    await partition.transaction(convert(corrected, "d" * 32).bundle)
    bundle = await partition.search(
        "Observation", {"identifier": "urn:ehr:hl7v2:QLAB|LAB555-1-2345-7"}, single_page=True
    )
    found = [entry["resource"] for entry in bundle.get("entry", [])]
    assert len(found) == 1
    assert found[0]["status"] == "corrected"
    assert found[0]["valueQuantity"]["value"] == 112
    reports = await partition.search(
        "DiagnosticReport", {"identifier": "urn:ehr:hl7v2:QLAB|LAB555"}, single_page=True
    )
    assert [entry["resource"]["status"] for entry in reports["entry"]] == ["corrected"]


async def test_a_merge_marks_the_old_record_replaced(partition: TenantFhirClient) -> None:
    await partition.transaction(convert(feeds.adt_a01_epic(), "e" * 32).bundle)
    await partition.transaction(convert(feeds.adt_a40_merge(), "f" * 32).bundle)
    old = await partition.search(
        "Patient", {"identifier": "urn:ehr:hl7v2:EPI|E7654321"}, single_page=True
    )
    [record] = [entry["resource"] for entry in old["entry"]]
    assert record["active"] is False
    assert record["link"][0]["type"] == "replaced-by"
    assert await _count(partition, "Patient", identifier="urn:ehr:hl7v2:EPI|E1234567") == 1
