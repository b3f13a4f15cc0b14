"""CDS Hooks request checks (400s) and prefetch resolution (tokens, null, OperationOutcome, 412)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from ehr.core.errors import BadRequestError, PreconditionFailed
from ehr.modules.cds_hooks.definitions import SERVICES, discovery
from ehr.modules.cds_hooks.hook_requests import parse_feedback, parse_request
from ehr.modules.cds_hooks.prefetch import TemplateNotFillable, fill_template, gather, user_tokens


def body(**fields: Any) -> bytes:
    document: dict[str, Any] = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/1",
            "patientId": "p1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
        },
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


SIGN = SERVICES["order-sign"]


# --------------------------------------------------------------------------- discovery


def test_discovery_lists_each_service_with_the_spec_fields() -> None:
    services = discovery().model_dump(by_alias=True, exclude_none=True)["services"]
    hooks = {s["hook"] for s in services}
    assert hooks == {
        "patient-view",
        "order-select",
        "order-sign",
        "encounter-start",
        "encounter-discharge",
        "appointment-book",
        "allergyintolerance-create",
        "problem-list-item-create",
        "medication-refill",
        "order-dispatch",
    }
    for service in services:
        assert service["id"]
        assert service["title"]
        assert service["description"]
        assert service["prefetch"], service["id"]
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())


def test_deprecated_hooks_are_answered_but_not_advertised() -> None:
    ids = {s.id for s in discovery().services}
    for legacy in ("medication-prescribe", "order-review"):
        assert legacy in SERVICES
        assert legacy not in ids


# --------------------------------------------------------------------------- malformed → 400


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (body(hook=None), "hook"),
        (body(hookInstance=None), "hookInstance"),
        (body(context=None), "context"),
        (body(hookInstance="not-a-uuid"), "hookInstance"),
        (body(hook="patient-view"), "does not match"),
        (
            body(
                fhirAuthorization={
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "user/*.read",
                    "subject": "cds",
                }
            ),
            "fhirAuthorization was sent without fhirServer",
        ),
        (body(context={"userId": "Practitioner/1", "patientId": "p1"}), "draftOrders"),
        (
            body(context={"userId": "Practitioner/1", "patientId": "p1", "draftOrders": []}),
            "draftOrders",
        ),
        (
            body(
                context={
                    "userId": "Practitioner/1",
                    "patientId": "p1",
                    "draftOrders": {"resourceType": "Patient"},
                }
            ),
            "must be a FHIR Bundle",
        ),
        (body(context={"userId": "u", "patientId": "", "draftOrders": {}}), "patientId"),
    ],
)
def test_malformed_requests_are_400_with_a_clear_message(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_request(raw, SIGN)
    assert caught.value.status_code == 400
    assert message in caught.value.detail


def test_a_valid_request_parses_and_keeps_extensions() -> None:
    parsed = parse_request(body(extension={"com.example.flag": True}), SIGN)
    assert parsed.hook == "order-sign"
    assert parsed.model_dump(by_alias=True)["extension"] == {"com.example.flag": True}


def test_fhir_authorization_token_is_secret() -> None:
    parsed = parse_request(
        body(
            fhirServer="https://ehr.example.org/fhir",
            fhirAuthorization={
                "access_token": "very-secret-token",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "user/*.read",
                "subject": "cds",
            },
        ),
        SIGN,
    )
    assert "very-secret-token" not in repr(parsed)
    assert parsed.fhir_authorization is not None
    assert parsed.fhir_authorization.access_token.get_secret_value() == "very-secret-token"


@pytest.mark.parametrize(
    "item",
    [
        {"card": "not-a-uuid", "outcome": "accepted", "outcomeTimestamp": "2021-12-11T10:05:31Z"},
        {
            "card": str(uuid.uuid4()),
            "outcome": "accepted",
            "outcomeTimestamp": "2021-12-11T10:05:31Z",
        },
        {
            "card": str(uuid.uuid4()),
            "outcome": "ignored",
            "outcomeTimestamp": "2021-12-11T10:05:31Z",
        },
        {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "outcomeTimestamp": "2021-12-11T10:05",
        },
    ],
)
def test_malformed_feedback_is_400(item: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        parse_feedback(json.dumps({"feedback": [item]}).encode())


def test_feedback_examples_of_the_spec_parse() -> None:
    accepted = {
        "feedback": [
            {
                "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
                "outcomeTimestamp": "2021-12-11T10:05:31Z",
            }
        ]
    }
    overridden = {
        "feedback": [
            {
                "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"code": "d7ecf885", "system": "https://example.com/reasons"},
                    "userComment": "A comment entered by the clinician.",
                },
                "outcomeTimestamp": "2020-12-11T00:00:00Z",
            }
        ]
    }
    assert parse_feedback(json.dumps(accepted).encode()).feedback[0].outcome == "accepted"
    parsed = parse_feedback(json.dumps(overridden).encode()).feedback[0]
    assert parsed.override_reason is not None
    assert parsed.override_reason.user_comment == "A comment entered by the clinician."


# --------------------------------------------------------------------------- tokens


def test_context_and_user_tokens_are_filled() -> None:
    context = {"patientId": "123", "userId": "PractitionerRole/456", "encounterId": "e 1"}
    assert fill_template("Patient/{{context.patientId}}", context) == "Patient/123"
    assert (
        fill_template("PractitionerRole?_id={{userPractitionerRoleId}}", context)
        == "PractitionerRole?_id=456"
    )
    assert fill_template("Encounter/{{context.encounterId}}", context) == "Encounter/e%201"
    assert user_tokens({"userId": "Practitioner/9"}) == {"userPractitionerId": "9"}
    assert user_tokens({"userId": "Patient/9"}) == {"userPatientId": "9"}
    assert user_tokens({"userId": "RelatedPerson/9"}) == {"userRelatedPersonId": "9"}


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.missing}}",
        "Practitioner/{{userPractitionerId}}",  # userId is a PractitionerRole
        "Bundle?x={{context.draftOrders}}",  # not a primitive
    ],
)
def test_unfillable_tokens_are_refused(template: str) -> None:
    context = {"patientId": "1", "userId": "PractitionerRole/2", "draftOrders": {"a": 1}}
    with pytest.raises(TemplateNotFillable):
        fill_template(template, context)


# --------------------------------------------------------------------------- gather


class RecordingSource:
    name = "fake"

    def __init__(self, answers: Mapping[str, dict[str, Any] | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def get(self, query: str) -> dict[str, Any] | None:
        self.asked.append(query)
        return self.answers.get(query)

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        for link in bundle.get("link") or []:
            if link.get("relation") == "next":
                self.asked.append(link["url"])
                return self.answers.get(link["url"])
        return None


TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
}
CONTEXT = {"patientId": "p1"}
PATIENT = {"resourceType": "Patient", "id": "p1"}


def bundle(*resources: dict[str, Any], next_url: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        document["link"] = [{"relation": "next", "url": next_url}]
    return document


async def test_prefetch_sent_is_used_and_nothing_fetched() -> None:
    source = RecordingSource({})
    result = await gather(TEMPLATES, CONTEXT, {"patient": PATIENT, "allergies": bundle()}, source)
    assert source.asked == []
    assert result.first("patient", "Patient") == PATIENT
    assert result.sent == {"patient", "allergies"}


async def test_null_means_no_data_and_is_not_fetched() -> None:
    source = RecordingSource({})
    result = await gather(TEMPLATES, CONTEXT, {"patient": PATIENT, "allergies": None}, source)
    assert source.asked == []
    assert result.resources("allergies") == []


async def test_missing_and_operation_outcome_keys_are_fetched() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1"}
    source = RecordingSource(
        {"Patient/p1": PATIENT, "AllergyIntolerance?patient=p1": bundle(allergy)}
    )
    result = await gather(
        TEMPLATES,
        CONTEXT,
        {"allergies": {"resourceType": "OperationOutcome", "issue": []}},
        source,
    )
    assert sorted(source.asked) == ["AllergyIntolerance?patient=p1", "Patient/p1"]
    assert result.fetched == {"patient", "allergies"}
    assert result.resources("allergies", "AllergyIntolerance") == [allergy]


async def test_paged_prefetch_bundles_are_followed() -> None:
    second = {"resourceType": "AllergyIntolerance", "id": "a2"}
    source = RecordingSource({"https://x/page2": bundle(second)})
    first = bundle({"resourceType": "AllergyIntolerance", "id": "a1"}, next_url="https://x/page2")
    result = await gather(TEMPLATES, CONTEXT, {"patient": PATIENT, "allergies": first}, source)
    assert [r["id"] for r in result.resources("allergies")] == ["a1", "a2"]
    assert result.complete


async def test_paged_prefetch_without_a_source_is_marked_incomplete() -> None:
    first = bundle({"resourceType": "AllergyIntolerance", "id": "a1"}, next_url="https://x/p2")
    result = await gather(TEMPLATES, CONTEXT, {"patient": PATIENT, "allergies": first}, None)
    assert not result.complete
    assert [r["id"] for r in result.resources("allergies")] == ["a1"]


async def test_missing_data_without_a_source_is_412_naming_the_keys() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        await gather(TEMPLATES, CONTEXT, {"patient": PATIENT}, None, hint="send it in prefetch")
    assert caught.value.status_code == 412
    assert "allergies" in caught.value.detail
    assert caught.value.extra["missing_prefetch"] == ["allergies"]


async def test_a_missing_patient_read_is_no_data() -> None:
    source = RecordingSource({})
    result = await gather({"patient": TEMPLATES["patient"]}, CONTEXT, None, source)
    assert result.resources("patient") == []
