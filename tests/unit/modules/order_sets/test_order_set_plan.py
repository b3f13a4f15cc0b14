"""An order set as a PlanDefinition and back, and the instantiation plan: which members, how
overrides merge and are validated again, and how the one transaction ties the RequestGroup to
its drafts (urn:uuid references, one group identifier, the canonical of the definition)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from ehr.core.errors import AppError
from ehr.modules.order_sets import load_starter_sets
from ehr.modules.order_sets.definitions import (
    MEMBER_ORDER_EXTENSION,
    is_order_set,
    key_of,
    stored_members,
    to_order_set,
)
from ehr.modules.order_sets.schemas import InstantiationRequest, OrderSetCreate
from ehr.modules.order_sets.service import OrderSetService, deep_merge
from ehr.platform.auth.principal import Principal

ADMIN = Principal(
    kind="user",
    subject=uuid.uuid4(),
    tenant="unit-tenant",
    tenant_id=uuid.uuid4(),
    roles=frozenset({"admin"}),
    username="unit.admin",
)


def member_documents(*kinds: str) -> list[dict[str, Any]]:
    """Shipped members of the given kinds (in order) as create documents, keys a, b, c..."""
    pool = [m for s in load_starter_sets() for m in s.members]
    chosen: list[Any] = []
    for kind in kinds:
        chosen.append(next(m for m in pool if m.order.kind == kind and m not in chosen))  # type: ignore[union-attr]
    return [
        {"key": chr(ord("a") + i), "order": m.model_dump(mode="json", exclude_none=True)["order"]}
        for i, m in enumerate(chosen)
    ]


def definition(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": "unit-set",
        "title": "Unit set",
        "members": member_documents("lab", "medication", "lab"),
        "sources": [{"citation": "A guideline", "url": "https://example.org/g"}],
    }
    body.update(changes)
    payload = OrderSetCreate.model_validate(body)
    service = OrderSetService(None, principal=ADMIN)  # type: ignore[arg-type]
    resource = service._resource(payload, key=payload.key, definition_version="3", starter=False)
    resource |= {"id": "pd-1", "meta": {"versionId": "7"}}
    return resource


def plan(resource: dict[str, Any], **request: Any) -> Any:
    service = OrderSetService(None, principal=ADMIN)  # type: ignore[arg-type]
    return service.plan(resource, "p-1", InstantiationRequest.model_validate(request))


def refused(code: str, call: Any) -> AppError:
    with pytest.raises(AppError) as caught:
        call()
    assert caught.value.code == code, caught.value.detail
    return caught.value


def test_a_definition_reads_back_as_written() -> None:
    resource = definition()
    assert is_order_set(resource)
    assert key_of(resource) == "unit-set"
    shown = to_order_set(resource)
    assert (shown.id, shown.version, shown.definition_version) == ("pd-1", "7", "3")
    assert shown.url == "urn:ehr:order-set:unit-set"
    assert [m.key for m in shown.members] == ["a", "b", "c"]
    assert [m.kind for m in shown.members] == ["lab", "medication", "lab"]
    assert all(m.code is not None and m.code["code"] for m in shown.members)
    assert shown.members[0].order == member_documents("lab")[0]["order"] | shown.members[0].order
    assert shown.sources[0].citation == "A guideline"
    assert not shown.starter


def test_an_action_carries_its_order_as_json_and_its_code_for_fhir_readers() -> None:
    action = definition()["action"][1]
    extension = action["extension"][0]
    assert extension["url"] == MEMBER_ORDER_EXTENSION
    attachment = extension["valueAttachment"]
    assert attachment["contentType"] == "application/json"
    assert json.loads(base64.b64decode(attachment["data"]))["kind"] == "medication"
    assert action["code"][0]["coding"][0]["system"]
    assert action["precheckBehavior"] == "yes"
    assert action["type"]["coding"][0]["code"] == "create"


def test_junk_actions_are_read_without_raising() -> None:
    resource = definition()
    resource["action"] = [
        "junk",
        {
            "id": "x",
            "extension": [{"url": MEMBER_ORDER_EXTENSION, "valueAttachment": {"data": "%%"}}],
        },
        {"precheckBehavior": "no"},
    ]
    members = stored_members(resource)
    assert [(m.key, m.order, m.selected) for m in members] == [
        ("x", None, True),
        ("action-3", None, False),
    ]
    assert to_order_set(resource).members[0].kind == "unknown"


def test_deep_merge_merges_objects_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": "keep", "d": 1}
    merged = deep_merge(base, {"a": {"y": 3}, "b": [9], "d": None})
    assert merged == {"a": {"x": 1, "y": 3}, "b": [9], "c": "keep"}
    assert base["a"] == {"x": 1, "y": 2}


def test_the_plan_is_one_transaction_linking_the_group_and_its_drafts() -> None:
    planned = plan(definition())
    entries = planned.bundle["entry"]
    assert planned.bundle["type"] == "transaction"
    group = entries[0]["resource"]
    assert group["resourceType"] == "RequestGroup"
    assert (group["status"], group["intent"]) == ("draft", "order")
    assert group["instantiatesCanonical"] == ["urn:ehr:order-set:unit-set|3"]
    assert group["subject"] == {"reference": "Patient/p-1"}
    assert [a["resource"]["reference"] for a in group["action"]] == [
        e["fullUrl"] for e in entries[1:]
    ]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in entries)
    assert len({e["fullUrl"] for e in entries}) == len(entries)
    for entry in entries[1:]:
        draft = entry["resource"]
        assert entry["request"] == {"method": "POST", "url": draft["resourceType"]}
        link = "groupIdentifier" if draft["resourceType"] == "MedicationRequest" else "requisition"
        assert draft[link] == group["groupIdentifier"]
        assert "urn:ehr:order-set:unit-set|3" in draft["instantiatesCanonical"]
        assert draft["subject"] == {"reference": "Patient/p-1"}
    assert [m.key for m in planned.members] == ["a", "b", "c"]
    assert planned.group_identifier.endswith(group["groupIdentifier"]["value"])


def test_two_plans_never_share_identifiers() -> None:
    first, second = plan(definition()), plan(definition())
    assert first.group_identifier != second.group_identifier
    urls = {e["fullUrl"] for p in (first, second) for e in p.bundle["entry"]}
    assert len(urls) == 8


def test_members_default_to_the_prechecked_ones() -> None:
    members = member_documents("lab", "medication")
    members[1]["selected"] = False
    planned = plan(definition(members=members))
    assert [m.key for m in planned.members] == ["a"]
    chosen = plan(definition(members=members), members=["b", "a", "b"])
    assert [m.key for m in chosen.members] == ["b", "a"]


def test_selection_and_override_refusals() -> None:
    resource = definition()
    refused("order_set_unknown_member", lambda: plan(resource, members=["zz"]))
    refused("order_set_unknown_member", lambda: plan(resource, overrides={"zz": {}}))
    refused("order_set_empty_selection", lambda: plan(resource, members=[]))
    refused(
        "order_set_override_not_selected",
        lambda: plan(resource, members=["a"], overrides={"b": {}}),
    )
    refused(
        "order_set_override_changes_kind",
        lambda: plan(resource, members=["a"], overrides={"a": {"kind": "medication"}}),
    )
    error = refused(
        "order_set_member_invalid",
        lambda: plan(resource, members=["a"], overrides={"a": {"not_a_field": 1}}),
    )
    assert error.status_code == 422
    assert error.extra["member"] == "a"
    assert error.extra["errors"][0]["loc"][:2] == ["members", "a"]
    # Never the caller's values (they may carry PHI): where, what, and the error type.
    assert all(set(e) == {"loc", "message", "type"} for e in error.extra["errors"])


def test_only_an_active_set_is_instantiated() -> None:
    refused("order_set_retired", lambda: plan(definition() | {"status": "retired"}))
    refused("order_set_not_active", lambda: plan(definition() | {"status": "draft"}))


def test_a_stored_member_that_no_longer_validates_is_named() -> None:
    resource = definition()
    ext = resource["action"][0]["extension"][0]["valueAttachment"]
    ext["data"] = base64.b64encode(json.dumps({"kind": "lab"}).encode()).decode()
    error = refused("order_set_member_invalid", lambda: plan(resource, members=["a"]))
    assert error.extra["member"] == "a"


def test_duplicate_member_keys_are_refused() -> None:
    members = member_documents("lab")
    refused("order_set_duplicate_member", lambda: definition(members=[members[0], members[0]]))
