"""The policy's compartment constraints as HAPI executes them (no gateway router involved).

Two patients (A, B) with Observations in one partition; a patient-context principal for A (the
portal role's real scopes). Every constrained query is run against HAPI through the FhirClient
bound to the partition: it never returns B's data, while the unconstrained control query does
(so the constraint is what protects). Refusals (chains, ``_has``, includes leaving the
compartment, transaction entries) are raised before anything reaches HAPI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from ehr.core.config import Settings
from ehr.core.errors import AppError, NotFoundError, PermissionDenied
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.platform.auth.permissions import Role, scopes_for
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.policy import (
    FhirInteraction,
    authorize,
    authorize_bundle,
    constrain,
    parse_request,
)

pytestmark = pytest.mark.integration

CODE = {"coding": [{"system": "urn:ehr:test:policy", "code": "shared-code"}]}


@dataclass
class Compartments:
    fhir: TenantFhirClient
    run: str
    a: dict[str, Any]
    b: dict[str, Any]
    a_obs: list[str]
    b_obs: list[str]

    @property
    def b_family(self) -> str:
        return str(self.b["name"][0]["family"])


def _tag(run: str) -> dict[str, Any]:
    return {"tag": [{"system": "urn:ehr:test", "code": run}]}


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[Compartments]:
    client = FhirClient(settings.fhir)
    fhir = client.for_tenant(settings.fhir.default_tenant)
    made: list[tuple[str, str]] = []
    try:
        people = []
        for label in ("A", "B"):
            patient = await fhir.create(
                {
                    "resourceType": "Patient",
                    "meta": _tag(run_id),
                    "name": [{"family": f"Zzpolicy{label}{run_id.replace('-', '')}"}],
                }
            )
            made.append(("Patient", patient["id"]))
            people.append(patient)
        a, b = people
        obs: dict[str, list[str]] = {a["id"]: [], b["id"]: []}
        for owner, performer in ((a, b), (a, a), (b, a), (b, b)):
            created = await fhir.create(
                {
                    "resourceType": "Observation",
                    "meta": _tag(run_id),
                    "status": "final",
                    "code": CODE,
                    "subject": {"reference": f"Patient/{owner['id']}"},
                    "performer": [{"reference": f"Patient/{performer['id']}"}],
                    "valueString": f"secret-of-{owner['id']}",
                }
            )
            made.append(("Observation", created["id"]))
            obs[owner["id"]].append(created["id"])
        yield Compartments(fhir, run_id, a, b, obs[a["id"]], obs[b["id"]])
    finally:
        for resource_type, resource_id in reversed(made):
            await fhir.delete(resource_type, resource_id)
        await client.aclose()


def portal(patient_id: str) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant="DEFAULT",
        tenant_id=uuid.uuid4(),
        roles=frozenset({Role.PATIENT.value}),
        scopes=scopes_for([Role.PATIENT]),
        patient_id=patient_id,
    )


def interaction(method: str, path: str, **params: str) -> FhirInteraction:
    return parse_request(method, path, tuple(params.items()))


async def run(w: Compartments, principal: Principal, i: FhirInteraction) -> dict[str, Any]:
    authorize(principal, i)
    out = constrain(principal, i)
    assert out.kind == "search"
    assert out.resource_type is not None
    return await w.fhir.search(out.resource_type, list(out.params))


def ids(bundle: dict[str, Any], resource_type: str) -> set[str]:
    return {
        e["resource"]["id"]
        for e in bundle.get("entry") or []
        if e["resource"]["resourceType"] == resource_type
    }


async def test_control_unconstrained_search_sees_both(world: Compartments) -> None:
    bundle = await world.fhir.search("Observation", {"code": "urn:ehr:test:policy|shared-code"})
    found = ids(bundle, "Observation")
    assert set(world.a_obs) <= found
    assert set(world.b_obs) <= found


async def test_search_returns_only_the_patients_observations(world: Compartments) -> None:
    me = portal(world.a["id"])
    for params in ({}, {"code": "urn:ehr:test:policy|shared-code"}, {"_count": "1000"}):
        bundle = await run(world, me, interaction("GET", "Observation", **params))
        found = ids(bundle, "Observation")
        assert set(world.a_obs) <= found
        assert not found & set(world.b_obs)
        assert f"secret-of-{world.b['id']}" not in json.dumps(bundle)


async def test_read_of_bs_observation_by_id_finds_nothing(world: Compartments) -> None:
    me = portal(world.a["id"])
    for obs_id in world.b_obs:
        bundle = await run(world, me, interaction("GET", f"Observation/{obs_id}"))
        assert not bundle.get("entry")
    mine = await run(world, me, interaction("GET", f"Observation/{world.a_obs[0]}"))
    assert ids(mine, "Observation") == {world.a_obs[0]}
    with pytest.raises(NotFoundError):
        constrain(me, interaction("GET", f"Patient/{world.b['id']}"))


async def test_patient_search_is_only_the_patient(world: Compartments) -> None:
    me = portal(world.a["id"])
    by_name = await run(world, me, interaction("GET", "Patient", name=world.b_family))
    assert not by_name.get("entry")
    everyone = await run(world, me, interaction("GET", "Patient", _tag=f"urn:ehr:test|{world.run}"))
    assert ids(everyone, "Patient") == {world.a["id"]}


async def test_allowed_includes_stay_inside_the_compartment(world: Compartments) -> None:
    me = portal(world.a["id"])
    included = await run(
        world, me, interaction("GET", "Observation", _include="Observation:subject")
    )
    assert ids(included, "Patient") == {world.a["id"]}
    assert not ids(included, "Observation") & set(world.b_obs)
    assert world.b_family not in json.dumps(included)
    rev = await run(
        world,
        me,
        interaction("GET", "Patient", _id=world.a["id"], _revinclude="Observation:subject"),
    )
    assert ids(rev, "Observation") == set(world.a_obs)
    assert ids(rev, "Patient") == {world.a["id"]}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        # B's Observation where A is the performer would come back through these.
        ("Patient", {"_revinclude": "Observation:performer"}),
        ("Observation", {"_include": "Observation:performer"}),
        ("Observation", {"_include:iterate": "Observation:subject"}),
        ("Patient", {"_include": "Patient:link"}),
        ("Observation", {"subject.name": "Zzpolicy"}),
        ("Observation", {"subject:Patient.name": "Zzpolicy"}),
        ("Patient", {"_has:Observation:performer:code": "urn:ehr:test:policy|shared-code"}),
        ("Observation", {"patient": "B"}),
    ],
)
async def test_leaving_the_compartment_is_refused(
    world: Compartments, path: str, params: dict[str, str]
) -> None:
    me = portal(world.a["id"])
    params = {k: v.replace("B", world.b["id"]) if v == "B" else v for k, v in params.items()}
    with pytest.raises(PermissionDenied):
        authorize(me, interaction("GET", path, **params))
    with pytest.raises(PermissionDenied):
        constrain(me, interaction("GET", path, **params))


async def test_control_performer_revinclude_would_leak(world: Compartments) -> None:
    """Why `_revinclude=Observation:performer` is refused: HAPI returns B's Observation."""
    bundle = await world.fhir.search(
        "Patient", [("_id", world.a["id"]), ("_revinclude", "Observation:performer")]
    )
    assert ids(bundle, "Observation") & set(world.b_obs)


async def test_transaction_entries(world: Compartments) -> None:
    me = portal(world.a["id"])
    a, b = world.a["id"], world.b["id"]
    for entry in (
        {"request": {"method": "GET", "url": f"Observation/{world.b_obs[0]}"}},
        {"request": {"method": "GET", "url": "Observation?code=urn:ehr:test:policy|shared-code"}},
        {"request": {"method": "GET", "url": f"Observation?patient=Patient/{b}"}},
        {"request": {"method": "GET", "url": f"Patient/{b}"}},
        {"request": {"method": "GET", "url": f"Observation?patient={a}&subject.name=x"}},
    ):
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
        with pytest.raises(AppError) as refused:
            authorize_bundle(me, bundle)
        assert refused.value.status_code in (403, 404)
    allowed = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation?patient=Patient/{a}"}},
            {"request": {"method": "GET", "url": f"Patient/{a}"}},
            {
                "request": {
                    "method": "GET",
                    "url": f"Observation?_id={world.b_obs[0]}&patient=Patient/{a}",
                }
            },
        ],
    }
    authorize_bundle(me, allowed)
    response = await world.fhir.batch(allowed)
    text = json.dumps(response)
    assert f"secret-of-{b}" not in text
    assert world.b_family not in text
    first = response["entry"][0]["resource"]
    assert ids(first, "Observation") == set(world.a_obs)
    assert not response["entry"][2]["resource"].get("entry")


async def test_constrained_writes_never_touch_bs_observation(world: Compartments) -> None:
    """Update/delete of B's id, constrained to A's compartment, change nothing of B's."""
    writer = Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant="DEFAULT",
        tenant_id=uuid.uuid4(),
        roles=frozenset(),
        scopes=frozenset({"patient/Observation.cruds"}),
        patient_id=world.a["id"],
    )
    a, target = world.a["id"], world.b_obs[0]
    delete = constrain(writer, interaction("DELETE", f"Observation/{target}"))
    assert delete.conditional
    query = "&".join(f"{k}={v}" for k, v in delete.params)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"Observation?{query}"}}],
    }
    authorize_bundle(writer, bundle)
    await world.fhir.transaction(bundle)
    still = await world.fhir.read("Observation", target)
    assert still["valueString"] == f"secret-of-{world.b['id']}"
    # A conditional delete pinned to A's compartment deletes A's only.
    own = await world.fhir.create(
        {
            "resourceType": "Observation",
            "meta": _tag(world.run),
            "status": "final",
            "code": CODE,
            "subject": {"reference": f"Patient/{a}"},
        }
    )
    mine = constrain(writer, interaction("DELETE", f"Observation/{own['id']}"))
    query = "&".join(f"{k}={v}" for k, v in mine.params)
    await world.fhir.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": f"Observation?{query}"}}],
        }
    )
    with pytest.raises(AppError) as gone:
        await world.fhir.read("Observation", own["id"])
    assert gone.value.status_code in (404, 410)
