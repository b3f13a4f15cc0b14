"""Every request example of the CDS Hooks corpus (tests/fixtures/cdshooks/requests/) is answered
by the real service with a response that validates against the spec (CdsResponse: summary < 140,
indicator, source.label, selectionBehavior with suggestions, actions with their targets...).

The examples are context-only (the hooks library and the cds-hooks docs) or a whole call (the
spec's patient-view example). Context-only examples are wrapped with ``hook`` (from the file name)
and a fresh ``hookInstance``. They name patients that do not exist in our HAPI: a first-party
client's call is answered from HAPI in its tenant (the record is missing, which the service
says in a card, and the draft orders the call carried are still checked). The spec's whole call
names ``http://hooks.smarthealthit.org:9080`` as fhirServer; the test registers our real HAPI
tenant base for its client and sends that instead (no Internet here), keeping every other
member as the example has it.

Hooks we do not serve answer 404 (explicitly listed below, so a new example is not silently
skipped).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.cds import (
    CdsClientKey,
    cds_bearer,
    mint_cds_token,
    new_client_key,
    register_cds_client,
    remove_cds_clients,
)

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import Tenant
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks.definitions import SERVICES
from ehr.modules.cds_hooks.schemas import CdsResponse
from ehr.platform.tenancy import create_tenant
from ehr.platform.tenancy.partitions import delete_partition, list_partitions

pytestmark = pytest.mark.integration

REQUESTS = Path(__file__).resolve().parents[2] / "fixtures" / "cdshooks" / "requests"
EXAMPLES = sorted(REQUESTS.glob("*.json"))
# Hooks of the library we offer no service for (no decision logic of ours applies).
NOT_SERVED: frozenset[str] = frozenset()


def hook_of(path: Path) -> str:
    return path.name.split("--", 1)[1].split("__", 1)[0]


@dataclass
class Site:
    settings: Settings
    issuer: str
    key: CdsClientKey
    hapi_base: str


@pytest.fixture(scope="module")
async def site(settings: Settings, run_id: str) -> AsyncIterator[Site]:
    engine = create_engine(settings.db)
    sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    fhir = FhirClient(settings.fhir)
    slug = f"z-cdsc-{run_id[4:]}"
    issuer = f"https://conformance.{run_id}.cds.test"
    key = new_client_key("ES384")
    try:
        async with sessions() as session, session.begin():
            await create_tenant(session, fhir, slug=slug, name="CDS conformance")
        hapi_base = f"{settings.fhir.base_url.rstrip('/')}/{slug}"
        await register_cds_client(
            sessions,
            tenant_slug=slug,
            issuer=issuer,
            key=key,
            first_party=True,
            fhir_servers=[hapi_base],
        )
        yield Site(settings=settings, issuer=issuer, key=key, hapi_base=hapi_base)
    finally:
        try:
            partitions = {p.name: p.id for p in await list_partitions(fhir)}
            if slug in partitions:
                await delete_partition(fhir, partitions[slug])
            await remove_cds_clients(sessions, [issuer])
            async with sessions() as session, session.begin():
                ids = list(
                    (await session.scalars(select(Tenant.id).where(Tenant.slug == slug))).all()
                )
                if ids:
                    await session.execute(delete(Tenant).where(Tenant.id.in_(ids)))
        finally:
            await fhir.aclose()
            await engine.dispose()


def test_the_corpus_is_here() -> None:
    assert len(EXAMPLES) >= 40
    assert {hook_of(p) for p in EXAMPLES} >= {
        "patient-view",
        "order-select",
        "order-sign",
        "encounter-start",
    }


def _call(path: Path, site: Site) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    hook = hook_of(path)
    if "hook" in document:
        call = dict(document)
        if "fhirServer" in call:
            call["fhirServer"] = site.hapi_base
        return call
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), **document}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
async def test_every_request_example_is_answered_per_spec(
    api: httpx.AsyncClient, site: Site, example: Path
) -> None:
    hook = hook_of(example)
    service = hook
    path = f"/cds-services/{service}"
    audience = f"{site.settings.gateway.public_base_url.rstrip('/')}{path}"
    token = mint_cds_token(site.key, issuer=site.issuer, audience=audience)
    response = await api.post(path, json=_call(example, site), headers=cds_bearer(token))
    if hook in NOT_SERVED:
        assert hook not in SERVICES
        assert response.status_code == 404, response.text
        return
    assert hook in SERVICES, f"{hook}: add a service or list it in NOT_SERVED"
    assert response.status_code == 200, response.text
    parsed = CdsResponse.model_validate(response.json())
    raw = response.json()
    assert isinstance(raw["cards"], list)
    for card in raw["cards"]:
        assert {"summary", "indicator", "source", "uuid"} <= set(card)
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        if card.get("suggestions"):
            assert card["selectionBehavior"] in ("at-most-one", "any")
    # The examples' patients are not in our HAPI: the service says so rather than staying silent.
    assert any(
        c.source.topic is not None and c.source.topic.code == "data:patient-not-found"
        for c in parsed.cards
    )
