"""/cds-services against the real stack: HAPI (tenant partitions), PostgreSQL (clients, feedback,
audit), Redis (jti replay, card coordination), with client JWTs signed like an EHR would.

Tenant A's patient (female, born 1950): warfarin (active order), a high-criticality penicillin
allergy, a blood pressure of 186/96 measured yesterday, a complete blood count ordered an hour
ago, no immunizations or screenings on record. Tenant B has its own first-party client.

Clients of A: ``first`` (first-party: data read from HAPI in A when no fhirServer is sent),
``external`` (not first-party; HAPI's tenant base registered as its fhirServer).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.cds import (
    CdsClientKey,
    cds_bearer,
    hmac_token,
    mint_cds_token,
    new_client_key,
    register_cds_client,
    remove_cds_clients,
    unsigned_token,
)
from support.tenants import remove_tenants

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import AuditRecord, CdsFeedback
from ehr.entrypoints.api import create_app
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks.schemas import CdsResponse, Discovery
from ehr.modules.medication_safety import RXNORM_SYSTEM
from ehr.platform.tenancy import create_tenant

pytestmark = pytest.mark.integration

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
WARFARIN_5MG_TABLET = "855332"
IBUPROFEN_600MG_TABLET = "197806"
AMOXICILLIN_250MG_CAPSULE = "308182"
OMEPRAZOLE = "7646"
CLOPIDOGREL = "32968"
PENICILLIN_SUBSTANCE = "764146007"
CBC_LOINC = "58410-2"
CLEANUP_ORDER = (
    "MedicationRequest",
    "AllergyIntolerance",
    "Observation",
    "ServiceRequest",
    "Patient",
)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cdshooks"


@dataclass
class Client:
    issuer: str
    key: CdsClientKey


@dataclass
class World:
    settings: Settings
    slug_a: str
    slug_b: str
    patient_a: str
    warfarin_ref: str
    first: Client
    external: Client
    other_tenant: Client
    sessionmaker: async_sessionmaker[AsyncSession]
    hapi_base_a: str
    made: dict[str, str] = field(default_factory=dict)


def _rx(code: str) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM_SYSTEM, "code": code}]}


async def _populate(fhir: FhirClient, slug: str, tag: dict[str, str]) -> tuple[str, str]:
    tenant = fhir.for_tenant(slug)
    meta = {"tag": [tag]}
    patient = await tenant.create(
        {"resourceType": "Patient", "meta": meta, "gender": "female", "birthDate": "1950-03-01"}
    )
    pid = patient["id"]
    subject = {"reference": f"Patient/{pid}"}
    warfarin = await tenant.create(
        {
            "resourceType": "MedicationRequest",
            "meta": meta,
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": _rx(WARFARIN_5MG_TABLET),
        }
    )
    await tenant.create(
        {
            "resourceType": "AllergyIntolerance",
            "meta": meta,
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "criticality": "high",
            "category": ["medication"],
            "patient": subject,
            "code": {
                "coding": [{"system": SNOMED, "code": PENICILLIN_SUBSTANCE}],
                "text": "Penicillin",
            },
        }
    )
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    await tenant.create(
        {
            "resourceType": "Observation",
            "meta": meta,
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": subject,
            "effectiveDateTime": yesterday,
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": 186, "unit": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": 96, "unit": "mm[Hg]"},
                },
            ],
        }
    )
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    await tenant.create(
        {
            "resourceType": "ServiceRequest",
            "meta": meta,
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": SNOMED, "code": "108252007"}]}],
            "code": {"coding": [{"system": LOINC, "code": CBC_LOINC}], "text": "CBC"},
            "subject": subject,
            "authoredOn": an_hour_ago,
        }
    )
    return pid, f"MedicationRequest/{warfarin['id']}"


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str, test_tag: dict[str, str]) -> AsyncIterator[World]:
    engine = create_engine(settings.db)
    sessions = create_sessionmaker(engine)
    fhir = FhirClient(settings.fhir)
    slugs = [f"z-cds-{run_id[4:]}-{label}" for label in ("a", "b")]
    issuers = [f"https://{label}.{run_id}.cds.test" for label in ("first", "external", "other")]
    try:
        async with sessions() as session, session.begin():
            for slug in slugs:
                await create_tenant(session, fhir, slug=slug, name=f"CDS {slug[-1]}")
        hapi_base_a = f"{settings.fhir.base_url.rstrip('/')}/{slugs[0]}"
        clients = [Client(issuer, new_client_key("ES384")) for issuer in issuers]
        await register_cds_client(
            sessions, tenant_slug=slugs[0], issuer=issuers[0], key=clients[0].key, first_party=True
        )
        await register_cds_client(
            sessions,
            tenant_slug=slugs[0],
            issuer=issuers[1],
            key=clients[1].key,
            fhir_servers=[hapi_base_a],
        )
        await register_cds_client(
            sessions, tenant_slug=slugs[1], issuer=issuers[2], key=clients[2].key, first_party=True
        )
        pid, warfarin_ref = await _populate(fhir, slugs[0], test_tag)
        yield World(
            settings=settings,
            slug_a=slugs[0],
            slug_b=slugs[1],
            patient_a=pid,
            warfarin_ref=warfarin_ref,
            first=clients[0],
            external=clients[1],
            other_tenant=clients[2],
            sessionmaker=sessions,
            hapi_base_a=hapi_base_a,
        )
    finally:
        try:
            await remove_cds_clients(sessions, issuers)
            await remove_tenants(slugs, fhir, sessions, tag=test_tag)
        finally:
            await fhir.aclose()
            await engine.dispose()


# --------------------------------------------------------------------------- helpers


def _aud(world: World, path: str) -> str:
    return f"{world.settings.gateway.public_base_url.rstrip('/')}{path}"


def _headers(world: World, client: Client, path: str) -> dict[str, str]:
    return cds_bearer(mint_cds_token(client.key, issuer=client.issuer, audience=_aud(world, path)))


def _draft(code: str, draft_id: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": draft_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": _rx(code),
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _call(hook: str, context: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, **extra}


async def _post(
    api: httpx.AsyncClient,
    world: World,
    service: str,
    body: dict[str, Any],
    client: Client | None = None,
) -> httpx.Response:
    path = f"/cds-services/{service}"
    return await api.post(path, json=body, headers=_headers(world, client or world.first, path))


def _valid(response: httpx.Response) -> CdsResponse:
    assert response.status_code == 200, response.text
    parsed = CdsResponse.model_validate(response.json())
    for card in parsed.cards:
        assert len(card.summary) < 140
        assert card.uuid
        assert card.source.label
    return parsed


def _topics(parsed: CdsResponse) -> list[str]:
    return [c.source.topic.code for c in parsed.cards if c.source.topic is not None]


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------------- discovery


async def test_discovery_needs_a_client_jwt(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get("/cds-services")).status_code == 401
    response = await api.get("/cds-services", headers=_headers(world, world.first, "/cds-services"))
    assert response.status_code == 200, response.text
    services = Discovery.model_validate(response.json()).services
    by_hook = {s.hook: s for s in services}
    assert {"patient-view", "order-select", "order-sign", "encounter-start"} <= set(by_hook)
    assert "medication-prescribe" not in by_hook
    for service in services:
        assert service.id
        assert service.title
        assert service.description
        assert service.prefetch


@pytest.mark.parametrize(
    "case", ["none", "hmac", "expired-spec-example", "wrong-aud", "unknown-iss", "replayed"]
)
async def test_bad_client_tokens_are_401(api: httpx.AsyncClient, world: World, case: str) -> None:
    path = "/cds-services/order-sign"
    now = int(time.time())
    claims = {
        "iss": world.first.issuer,
        "aud": _aud(world, path),
        "exp": now + 60,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    if case == "none":
        token = unsigned_token(claims, kid=world.first.key.kid)
    elif case == "hmac":
        token = hmac_token(world.first.key.public_pem(), claims, kid=world.first.key.kid)
    elif case == "expired-spec-example":
        token = (FIXTURES / "spec__L1090__example-jwt-ES384.txt").read_text().strip()
    elif case == "wrong-aud":
        token = mint_cds_token(
            world.first.key,
            issuer=world.first.issuer,
            audience=_aud(world, "/cds-services/patient-view"),
        )
    elif case == "unknown-iss":
        token = mint_cds_token(
            new_client_key("ES384"), issuer="https://nobody.example", audience=_aud(world, path)
        )
    else:
        token = mint_cds_token(
            world.first.key, issuer=world.first.issuer, audience=_aud(world, path)
        )
        body = _call(
            "order-sign",
            {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle()},
        )
        first = await api.post(path, json=body, headers=cds_bearer(token))
        assert first.status_code == 200, first.text
    body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle()},
    )
    response = await api.post(path, json=body, headers=cds_bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --------------------------------------------------------------------------- order hooks


async def test_order_sign_warfarin_plus_ibuprofen_suggests_acetaminophen(
    api: httpx.AsyncClient, world: World
) -> None:
    draft = _draft(IBUPROFEN_600MG_TABLET, "draft-ibu", world.patient_a)
    body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle(draft)},
    )
    parsed = _valid(await _post(api, world, "order-sign", body))
    cards = [
        c for c in parsed.cards if c.source.topic and c.source.topic.code == "DDI-WARFARIN-NSAIDS"
    ]
    assert len(cards) == 1, _topics(parsed)
    card = cards[0]
    assert card.indicator == "critical"
    assert card.override_reasons
    assert card.selection_behavior == "at-most-one"
    assert card.suggestions is not None
    replace = card.suggestions[0]
    assert replace.is_recommended
    assert replace.actions is not None
    assert [a.type for a in replace.actions] == ["delete", "create"]
    assert replace.actions[0].resource_id == "MedicationRequest/draft-ibu"
    created = replace.actions[1].resource
    assert created is not None
    assert created["medicationCodeableConcept"]["coding"][0]["code"] == "161"
    assert created["subject"] == {"reference": f"Patient/{world.patient_a}"}
    assert "dosageInstruction" not in created


async def test_order_sign_says_when_a_draft_cannot_be_checked_and_flags_a_dose(
    api: httpx.AsyncClient, world: World
) -> None:
    unknown = _draft("99999999", "draft-unknown", world.patient_a)
    methotrexate = {
        **_draft("105585", "draft-mtx", world.patient_a),  # methotrexate 2.5 MG Oral Tablet
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "code": "{tbl}"}}],
            }
        ],
    }
    body = _call(
        "order-sign",
        {
            "userId": "Practitioner/1",
            "patientId": world.patient_a,
            "draftOrders": _bundle(unknown, methotrexate),
        },
    )
    parsed = _valid(await _post(api, world, "order-sign", body))
    by_rule = {c.source.topic.code: c for c in parsed.cards if c.source.topic}
    unable = by_rule["MS-UNABLE-TO-CHECK"]
    assert unable.indicator == "warning"
    assert unable.summary.startswith("Unable to check")
    # Methotrexate taken every day instead of weekly: the classic fatal error.
    dose = by_rule["DOSE-METHOTREXATE"]
    assert dose.indicator == "critical"
    assert "7 doses a week" in dose.summary or "7 doses a week" in (dose.detail or "")


async def test_order_sign_amoxicillin_against_the_penicillin_allergy(
    api: httpx.AsyncClient, world: World
) -> None:
    draft = _draft(AMOXICILLIN_250MG_CAPSULE, "draft-amox", world.patient_a)
    body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle(draft)},
    )
    parsed = _valid(await _post(api, world, "order-sign", body))
    allergy = [c for c in parsed.cards if c.summary and "penicillin" in (c.detail or "").lower()]
    assert allergy, [c.summary for c in parsed.cards]
    assert allergy[0].indicator == "critical"


async def test_order_select_then_sign_does_not_repeat_the_card(
    api: httpx.AsyncClient, world: World
) -> None:
    clopidogrel = _draft(CLOPIDOGREL, f"clop-{uuid.uuid4().hex[:6]}", world.patient_a)
    omeprazole = _draft(OMEPRAZOLE, f"omep-{uuid.uuid4().hex[:6]}", world.patient_a)
    drafts = _bundle(clopidogrel, omeprazole)
    select_body = _call(
        "order-select",
        {
            "userId": "Practitioner/1",
            "patientId": world.patient_a,
            "selections": [f"MedicationRequest/{omeprazole['id']}"],
            "draftOrders": drafts,
        },
    )
    selected = _valid(await _post(api, world, "order-select", select_body))
    assert "DDI-CLOPIDOGREL-CYP2C19-PPIS" in _topics(selected)
    card = next(
        c
        for c in selected.cards
        if c.source.topic and c.source.topic.code == "DDI-CLOPIDOGREL-CYP2C19-PPIS"
    )
    assert card.suggestions
    assert card.suggestions[0].actions
    assert card.suggestions[0].actions[1].resource is not None  # pantoprazole
    before = _sample(
        "ehr_cds_cards_suppressed_total",
        {"service": "order-sign", "rule": "DDI-CLOPIDOGREL-CYP2C19-PPIS"},
    )
    sign_body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": drafts},
    )
    signed = _valid(await _post(api, world, "order-sign", sign_body))
    assert "DDI-CLOPIDOGREL-CYP2C19-PPIS" not in _topics(signed)
    after = _sample(
        "ehr_cds_cards_suppressed_total",
        {"service": "order-sign", "rule": "DDI-CLOPIDOGREL-CYP2C19-PPIS"},
    )
    assert after == before + 1


async def test_duplicate_lab_order_within_24_hours(api: httpx.AsyncClient, world: World) -> None:
    draft = {
        "resourceType": "ServiceRequest",
        "id": "draft-cbc",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": "108252007"}]}],
        "code": {"coding": [{"system": LOINC, "code": CBC_LOINC}], "text": "CBC"},
        "subject": {"reference": f"Patient/{world.patient_a}"},
    }
    body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle(draft)},
    )
    parsed = _valid(await _post(api, world, "order-sign", body))
    cards = [
        c
        for c in parsed.cards
        if c.source.topic and c.source.topic.code == "order:duplicate-service-request"
    ]
    assert len(cards) == 1
    assert cards[0].summary.startswith("Duplicate laboratory test: CBC was ordered")
    assert cards[0].suggestions
    assert cards[0].suggestions[0].actions
    action = cards[0].suggestions[0].actions[0]
    assert (action.type, action.resource_id) == ("delete", "ServiceRequest/draft-cbc")


# --------------------------------------------------------------------------- patient-view etc.


async def test_patient_view_reminders_from_hapi(api: httpx.AsyncClient, world: World) -> None:
    body = _call("patient-view", {"userId": "Practitioner/1", "patientId": world.patient_a})
    parsed = _valid(await _post(api, world, "patient-view", body))
    topics = _topics(parsed)
    assert "reminder:high-criticality-allergy" in topics
    assert any(t.startswith("gap:") for t in topics), topics
    bp = [c for c in parsed.cards if "186/96" in (c.summary + (c.detail or ""))]
    assert bp, topics
    assert bp[0].indicator == "critical"


async def test_encounter_start_care_gaps_with_draft_orders(
    api: httpx.AsyncClient, world: World
) -> None:
    body = _call(
        "encounter-start",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "encounterId": "e1"},
    )
    parsed = _valid(await _post(api, world, "encounter-start", body))
    assert parsed.cards
    assert all(c.indicator == "info" for c in parsed.cards)
    with_orders = [c for c in parsed.cards if c.suggestions]
    assert with_orders
    action = with_orders[0].suggestions[0].actions[0]  # type: ignore[index]
    assert action.type == "create"
    assert action.resource is not None
    assert action.resource["resourceType"] == "ServiceRequest"
    assert action.resource["status"] == "draft"


# --------------------------------------------------------------------------- prefetch, sources


async def test_prefetch_only_client_is_answered_from_prefetch(
    api: httpx.AsyncClient, world: World
) -> None:
    patient = {"resourceType": "Patient", "id": "pf-1", "gender": "male", "birthDate": "1960-01-01"}
    warfarin = {
        "resourceType": "MedicationRequest",
        "id": "w1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/pf-1"},
        "medicationCodeableConcept": _rx(WARFARIN_5MG_TABLET),
    }
    empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    prefetch = {
        "patient": patient,
        "medicationRequests": {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": warfarin}],
        },
        "medicationStatements": None,
        "allergies": empty,
        "serviceRequests": empty,
    }
    body = _call(
        "order-sign",
        {
            "userId": "Practitioner/1",
            "patientId": "pf-1",
            "draftOrders": _bundle(_draft(IBUPROFEN_600MG_TABLET, "d1", "pf-1")),
        },
        prefetch=prefetch,
    )
    parsed = _valid(await _post(api, world, "order-sign", body, world.external))
    assert "DDI-WARFARIN-NSAIDS" in _topics(parsed)
    # The same call without the allergies key: nothing to fetch it from → 412 naming it.
    del prefetch["allergies"]
    body["hookInstance"] = str(uuid.uuid4())
    response = await _post(api, world, "order-sign", body, world.external)
    assert response.status_code == 412, response.text
    assert "allergies" in response.json()["detail"]


async def test_registered_fhir_server_is_read_with_the_lent_token(
    api: httpx.AsyncClient,
    world: World,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = _call(
        "order-sign",
        {
            "userId": "Practitioner/1",
            "patientId": world.patient_a,
            "draftOrders": _bundle(_draft(IBUPROFEN_600MG_TABLET, "d2", world.patient_a)),
        },
        fhirServer=world.hapi_base_a,
        fhirAuthorization={
            "access_token": "lent-token-never-logged",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "cds-service",
        },
    )
    parsed = _valid(await _post(api, world, "order-sign", body, world.external))
    assert "DDI-WARFARIN-NSAIDS" in _topics(parsed)
    body["fhirServer"] = "http://127.0.0.1:9/fhir"
    body["hookInstance"] = str(uuid.uuid4())
    response = await _post(api, world, "order-sign", body, world.external)
    assert response.status_code == 412
    assert "not registered" in response.json()["detail"]
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert "lent-token-never-logged" not in text


async def test_a_client_reads_only_its_own_tenant(api: httpx.AsyncClient, world: World) -> None:
    body = _call("patient-view", {"userId": "Practitioner/1", "patientId": world.patient_a})
    parsed = _valid(await _post(api, world, "patient-view", body, world.other_tenant))
    assert _topics(parsed) == ["data:patient-not-found"]


async def test_hapi_down_without_prefetch_is_503_not_a_hang(world: World) -> None:
    settings = world.settings.model_copy(
        update={
            "fhir": world.settings.fhir.model_copy(update={"base_url": "http://127.0.0.1:9/fhir"})
        }
    )
    from asgi_lifespan import LifespanManager

    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        body = _call("patient-view", {"userId": "Practitioner/1", "patientId": world.patient_a})
        started = time.monotonic()
        response = await _post(client, world, "patient-view", body)
        assert time.monotonic() - started < 10
    assert response.status_code in (412, 503), response.text
    assert response.json()["detail"]


# --------------------------------------------------------------------------- malformed → 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{oops", "not valid JSON"),
        (json.dumps({"hookInstance": str(uuid.uuid4()), "context": {}}).encode(), "hook"),
        (json.dumps({"hook": "order-sign", "context": {}}).encode(), "hookInstance"),
        (json.dumps({"hook": "order-sign", "hookInstance": str(uuid.uuid4())}).encode(), "context"),
        (
            json.dumps(
                {
                    "hook": "patient-view",
                    "hookInstance": str(uuid.uuid4()),
                    "context": {"patientId": "1", "userId": "u"},
                }
            ).encode(),
            "does not match",
        ),
        (
            json.dumps(
                {
                    "hook": "order-sign",
                    "hookInstance": str(uuid.uuid4()),
                    "context": {
                        "patientId": "1",
                        "userId": "u",
                        "draftOrders": {"resourceType": "Bundle"},
                    },
                    "fhirAuthorization": {
                        "access_token": "x",
                        "token_type": "Bearer",
                        "expires_in": 1,
                        "scope": "s",
                        "subject": "c",
                    },
                }
            ).encode(),
            "without fhirServer",
        ),
    ],
)
async def test_malformed_calls_are_400(
    api: httpx.AsyncClient, world: World, raw: bytes, expected: str
) -> None:
    path = "/cds-services/order-sign"
    headers = {**_headers(world, world.first, path), "Content-Type": "application/json"}
    response = await api.post(path, content=raw, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert expected in response.json()["detail"]


async def test_unknown_service_is_404(api: httpx.AsyncClient, world: World) -> None:
    path = "/cds-services/no-such-service"
    body = _call("no-such-service", {"patientId": "1"})
    response = await api.post(path, json=body, headers=_headers(world, world.first, path))
    assert response.status_code == 404


# --------------------------------------------------------------------------- feedback and audit


async def test_feedback_is_stored_once_and_counted_per_rule(
    api: httpx.AsyncClient, world: World
) -> None:
    draft = _draft(IBUPROFEN_600MG_TABLET, "fb-ibu", world.patient_a)
    body = _call(
        "order-sign",
        {"userId": "Practitioner/1", "patientId": world.patient_a, "draftOrders": _bundle(draft)},
    )
    parsed = _valid(await _post(api, world, "order-sign", body))
    card = next(
        c for c in parsed.cards if c.source.topic and c.source.topic.code == "DDI-WARFARIN-NSAIDS"
    )
    assert card.suggestions
    assert card.suggestions[0].uuid
    labels = {"service": "order-sign", "rule": "DDI-WARFARIN-NSAIDS", "outcome": "accepted"}
    before = _sample("ehr_cds_card_feedback_total", labels)
    feedback = {
        "feedback": [
            {
                "card": card.uuid,
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card.suggestions[0].uuid}],
                "outcomeTimestamp": dt.datetime.now(dt.UTC).isoformat(),
            }
        ]
    }
    path = "/cds-services/order-sign/feedback"
    first = await api.post(path, json=feedback, headers=_headers(world, world.first, path))
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 1, "duplicates": 0}
    again = await api.post(path, json=feedback, headers=_headers(world, world.first, path))
    assert again.json() == {"stored": 0, "duplicates": 1}
    assert _sample("ehr_cds_card_feedback_total", labels) == before + 1
    async with world.sessionmaker() as session:
        row = (
            await session.scalars(
                select(CdsFeedback).where(CdsFeedback.card_uuid == uuid.UUID(card.uuid))
            )
        ).one()
    assert row.rule_id == "DDI-WARFARIN-NSAIDS"
    assert row.accepted_suggestions == [card.suggestions[0].uuid]

    overridden = {
        "feedback": [
            {
                "card": card.uuid,
                "outcome": "overridden",
                "overrideReason": {
                    "reason": card.override_reasons[0].model_dump(by_alias=True, exclude_none=True),  # type: ignore[index]
                    "userComment": "Short course, INR checked",
                },
                "outcomeTimestamp": dt.datetime.now(dt.UTC).isoformat(),
            }
        ]
    }
    response = await api.post(path, json=overridden, headers=_headers(world, world.first, path))
    assert response.json()["stored"] == 1


async def test_every_call_is_audited_with_the_client_and_patient(
    api: httpx.AsyncClient, world: World
) -> None:
    body = _call("patient-view", {"userId": "Practitioner/1", "patientId": world.patient_a})
    response = await _post(api, world, "patient-view", body)
    assert response.status_code == 200
    async with world.sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.tenant == world.slug_a,
                    AuditRecord.request_id == response.headers["x-request-id"],
                )
            )
        )
    assert len(rows) == 1
    record = rows[0]
    assert record.actor_type == "cds_client"
    assert record.action == "cds:patient-view"
    assert record.patient_id == world.patient_a
    assert record.outcome == "success"
    assert record.details is not None
    assert record.details["cards"] == len(response.json()["cards"])
    assert record.details["source"] == "hapi"
