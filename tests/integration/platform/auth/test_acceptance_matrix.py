"""Acceptance matrix: every protected route, every role, two tenants, against the real stack.

Expectations come from the code's own tables, never from lists written here:

- the routes are the app's routes (a new protected route is in the matrix automatically);
- the permission a route needs is the ``RequirePermission`` marker in its dependency tree;
- whether a role may call it is ``ROLE_PERMISSIONS[role]``.

An allowed call must get past authorization (not 401/403; the patients routes must succeed); a
denied one is 403 ``permission_denied`` problem+json. Requests for routes without a dedicated
builder below are deliberately harmless (unknown ids, empty bodies): they prove the gate, not the
feature. Then tenant A's users try to reach tenant B's data by every route that exists.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from support.tenant_world import MRN_SYSTEM, TenantWorld, World

from ehr.core.db.models import AuditRecord, User
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE
from ehr.platform.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from ehr.platform.auth.tokens import issue_access_token_for

pytestmark = pytest.mark.integration

BREAK_GLASS = {"X-Break-Glass-Reason": "Unconscious patient in the emergency department"}


@dataclass(frozen=True)
class Probe:
    method: str
    url: str
    body: Any = None
    params: dict[str, str] | None = None
    # The status an allowed caller must get (None: anything but 401/403).
    expect: int | None = None
    # Sent with a throwaway token of the same user (the call may revoke it).
    fresh_token: bool = False


def _markers(dependant: Any) -> list[object]:
    found = [getattr(dependant.call, PERMISSION_ATTRIBUTE, None)]
    for sub in dependant.dependencies:
        found += _markers(sub)
    return [m for m in found if m is not None]


def protected_routes(app: FastAPI) -> dict[tuple[str, str], Permission]:
    """(method, path) → the permission of every route that is not public."""
    routes: dict[tuple[str, str], Permission] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        permissions = [m for m in _markers(context.dependant) if isinstance(m, Permission)]
        if not permissions:
            continue
        assert len(permissions) == 1, f"{context.path}: several permissions {permissions}"
        for method in context.methods or ():
            routes[(method, str(context.path))] = permissions[0]
    return routes


def _new_patient(world: World, tenant: TenantWorld, role: Role) -> dict[str, Any]:
    return {
        "identifier": {"system": MRN_SYSTEM, "value": f"{world.run}-{tenant.label}-{role}"},
        "family": f"Zzauthz{tenant.label}new{world.run.replace('-', '')}",
        "given": ["Matrix"],
        "gender": "unknown",
    }


ProbeBuilder = Callable[[World, TenantWorld, Role], Probe]

# Real requests for the routes whose success we can check; others get a harmless probe.
PROBES: dict[tuple[str, str], ProbeBuilder] = {
    ("GET", "/api/patients"): lambda w, t, r: Probe(
        "GET",
        "/api/patients",
        params={
            "identifier": t.patient["identifier"][0]["system"]
            + "|"
            + t.patient["identifier"][0]["value"]
        },
        expect=200,
    ),
    ("GET", "/api/patients/{patient_id}"): lambda w, t, r: Probe(
        "GET", f"/api/patients/{t.patient['id']}", expect=200
    ),
    ("POST", "/api/patients"): lambda w, t, r: Probe(
        "POST", "/api/patients", body=_new_patient(w, t, r), expect=201
    ),
    # Logging out revokes the token it is called with: a throwaway one.
    ("POST", "/api/auth/logout"): lambda w, t, r: Probe(
        "POST", "/api/auth/logout", fresh_token=True
    ),
    # Medication safety: ibuprofen (RxNorm SCD 197806) against warfarin (SCD 855332).
    ("POST", "/api/medication-safety/check"): lambda w, t, r: Probe(
        "POST",
        "/api/medication-safety/check",
        body={
            "proposed": [
                {
                    "codings": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197806"}
                    ]
                }
            ],
            "active": [
                {
                    "codings": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "855332"}
                    ]
                }
            ],
        },
        expect=200,
    ),
    ("POST", "/api/medication-safety/patients/{patient_id}/check"): lambda w, t, r: Probe(
        "POST",
        f"/api/medication-safety/patients/{t.patient['id']}/check",
        body={
            "proposed": [
                {
                    "codings": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197806"}
                    ]
                }
            ]
        },
        expect=200,
    ),
    ("GET", "/api/medication-safety/knowledge-base"): lambda w, t, r: Probe(
        "GET", "/api/medication-safety/knowledge-base", expect=200
    ),
    ("GET", "/api/medication-safety/knowledge-base/rules"): lambda w, t, r: Probe(
        "GET",
        "/api/medication-safety/knowledge-base/rules",
        params={"severity": "major"},
        expect=200,
    ),
    ("GET", "/api/medication-safety/policy"): lambda w, t, r: Probe(
        "GET", "/api/medication-safety/policy", expect=200
    ),
    # Saving the default policy: allowed callers succeed without changing any display.
    ("PUT", "/api/medication-safety/policy"): lambda w, t, r: Probe(
        "PUT",
        "/api/medication-safety/policy",
        body={"interruptive_severities": ["contraindicated", "major"], "rule_display": {}},
        expect=200,
    ),
}


def harmless_probe(method: str, path: str) -> Probe:
    url = path
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        url = url[:start] + str(uuid.uuid4()) + url[end + 1 :]
    return Probe(method, url, body=[] if method in ("POST", "PUT", "PATCH") else None)


async def fresh_token(world: World, tenant: TenantWorld, role: Role) -> str:
    async with world.sessionmaker() as session, session.begin():
        user = await session.get(User, tenant.users[role])
        assert user is not None
        return await issue_access_token_for(session, world.settings, user)


def _allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def _matrix(app: FastAPI) -> list[tuple[str, str, Permission]]:
    return [(m, p, perm) for (m, p), perm in sorted(protected_routes(app).items())]


async def _send(api: httpx.AsyncClient, probe: Probe, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers, "params": probe.params}
    if probe.body is not None:
        kwargs["json"] = probe.body
    return await api.request(probe.method, probe.url, **kwargs)


def test_the_matrix_covers_the_patients_routes(app: FastAPI) -> None:
    routes = protected_routes(app)
    assert routes[("GET", "/api/patients")] is Permission.PATIENT_READ
    assert routes[("GET", "/api/patients/{patient_id}")] is Permission.PATIENT_READ
    assert routes[("POST", "/api/patients")] is Permission.PATIENT_WRITE


@pytest.mark.parametrize("label", ["a", "b"])
async def test_every_role_on_every_protected_route(
    api: httpx.AsyncClient, app: FastAPI, world: World, label: str
) -> None:
    tenant = world.tenants[label]
    failures: list[str] = []
    for method, path, permission in _matrix(app):
        for role in Role:
            builder = PROBES.get((method, path))
            probe = builder(world, tenant, role) if builder else harmless_probe(method, path)
            headers = tenant.auth(role)
            if probe.fresh_token:
                headers = {"Authorization": f"Bearer {await fresh_token(world, tenant, role)}"}
            response = await _send(api, probe, headers)
            where = f"{role.value} {method} {path} ({permission.value}) → {response.status_code}"
            if _allowed(role, permission):
                if response.status_code in (401, 403):
                    failures.append(f"allowed but refused: {where} {response.text[:200]}")
                elif probe.expect is not None and response.status_code != probe.expect:
                    failures.append(f"allowed, expected {probe.expect}: {where}")
            elif response.status_code != 403 or response.json().get("code") != "permission_denied":
                failures.append(f"denied but not 403 permission_denied: {where}")
            elif response.headers["content-type"] != PROBLEM_JSON:
                failures.append(f"403 is not problem+json: {where}")
    assert not failures, "\n".join(failures)


# --- break-glass ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_restricted_patient_needs_break_glass(
    api: httpx.AsyncClient, world: World, role: Role
) -> None:
    tenant = world.tenants["a"]
    url = f"/api/patients/{tenant.restricted['id']}"
    plain = await api.get(url, headers=tenant.auth(role))
    glass = await api.get(url, headers={**tenant.auth(role), **BREAK_GLASS})
    family = tenant.restricted["name"][0]["family"]
    assert family not in plain.text
    if not _allowed(role, Permission.PATIENT_READ):
        assert plain.status_code == glass.status_code == 403
    elif role is Role.PATIENT:  # outside the portal user's compartment
        assert plain.status_code == glass.status_code == 404
    elif _allowed(role, Permission.BREAK_GLASS):
        assert plain.status_code == 403
        assert plain.json()["code"] == "break_glass_required"
        assert glass.status_code == 200, glass.text
        assert glass.json()["id"] == tenant.restricted["id"]
        async with world.sessionmaker() as session:
            record = await session.scalar(
                select(AuditRecord).where(
                    AuditRecord.tenant == tenant.slug,
                    AuditRecord.request_id == glass.headers["x-request-id"],
                )
            )
        assert record is not None
        assert record.action == "patient:read"
        assert record.patient_id == tenant.restricted["id"]
        assert record.break_glass is True
        assert record.break_glass_reason == BREAK_GLASS["X-Break-Glass-Reason"]
    else:
        assert plain.status_code == glass.status_code == 403
        assert glass.json()["code"] == "permission_denied"
        assert family not in glass.text


# --- tenant isolation -------------------------------------------------------------------------


def _no_data_of(tenant: TenantWorld, response: httpx.Response) -> None:
    text = response.text
    for secret in (tenant.family, tenant.restricted["name"][0]["family"]):
        assert secret not in text, f"tenant {tenant.slug}'s data leaked: {text[:300]}"
    assert tenant.slug not in text


READERS = [r for r in Role if _allowed(r, Permission.PATIENT_READ)]
WRITERS = [r for r in Role if _allowed(r, Permission.PATIENT_WRITE)]


@pytest.mark.parametrize("role", READERS)
async def test_a_cannot_read_bs_patients(api: httpx.AsyncClient, world: World, role: Role) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    for patient in (b.patient, b.restricted):
        for headers in (a.auth(role), {**a.auth(role), **BREAK_GLASS}):
            response = await api.get(f"/api/patients/{patient['id']}", headers=headers)
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            _no_data_of(b, response)


@pytest.mark.parametrize("role", READERS)
async def test_a_cannot_find_bs_patients(api: httpx.AsyncClient, world: World, role: Role) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    identifier = b.patient["identifier"][0]
    for params in (
        {"identifier": f"{identifier['system']}|{identifier['value']}"},
        {"name": b.family},
    ):
        response = await api.get("/api/patients", params=params, headers=a.auth(role))
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
        _no_data_of(b, response)


async def test_bs_page_token_is_refused_in_a(api: httpx.AsyncClient, world: World) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    first = await api.get(
        "/api/patients", params={"_count": "1"}, headers={**b.auth(Role.PHYSICIAN), **BREAK_GLASS}
    )
    assert first.status_code == 200, first.text
    next_url = first.json()["next"]
    assert next_url, "tenant B needs two patients for a second page"
    stolen = await api.get(next_url, headers=a.auth(Role.PHYSICIAN))
    assert stolen.status_code == 400
    assert stolen.json()["code"] == "invalid_page_token"
    _no_data_of(b, stolen)


@pytest.mark.parametrize("role", WRITERS)
async def test_creating_in_a_never_returns_bs_patient(
    api: httpx.AsyncClient, world: World, role: Role
) -> None:
    """Posting B's identifier from A must not hand out B's patient (conditional create)."""
    a, b = world.tenants["a"], world.tenants["b"]
    identifier = b.patient["identifier"][0]
    payload = {"identifier": identifier, "family": "Zzother", "given": ["X"]}
    response = await api.post("/api/patients", json=payload, headers=a.auth(role))
    _no_data_of(b, response)
    assert response.status_code == 201, response.text
    assert response.json()["id"] != b.patient["id"]
    await world.fhir.for_tenant(a.slug).delete("Patient", response.json()["id"])


async def test_conditional_creates_do_not_collide_across_tenants(
    api: httpx.AsyncClient, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    payload = {
        "identifier": {"system": MRN_SYSTEM, "value": f"{world.run}-shared-mrn"},
        "family": f"Zzshared{world.run.replace('-', '')}",
        "given": ["X"],
    }
    in_b = await api.post("/api/patients", json=payload, headers=b.auth(Role.FRONT_DESK))
    assert in_b.status_code == 201, in_b.text
    in_a = await api.post("/api/patients", json=payload, headers=a.auth(Role.FRONT_DESK))
    assert in_a.status_code != 404
    _no_data_of(b, in_a)
    assert in_a.status_code == 201, in_a.text
    assert in_a.json()["id"] != in_b.json()["id"]


async def test_the_fhir_client_bound_to_a_cannot_touch_bs_resources(world: World) -> None:
    from ehr.core.errors import AppError
    from ehr.fhir import FhirResourceNotFound

    a, b = world.tenants["a"], world.tenants["b"]
    fhir_a, fhir_b = world.fhir.for_tenant(a.slug), world.fhir.for_tenant(b.slug)
    b_id = b.patient["id"]

    with pytest.raises(FhirResourceNotFound):
        await fhir_a.read("Patient", b_id)
    # Reference across partitions: refused.
    with pytest.raises(AppError) as refused:
        await fhir_a.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "matrix"},
                "subject": {"reference": f"Patient/{b_id}"},
            }
        )
    assert 400 <= refused.value.status_code < 500
    # Update of B's id through A: refused (no client-assigned ids), B unchanged.
    with pytest.raises(AppError) as updated:
        await fhir_a.update({**b.patient, "name": [{"family": "Hijacked"}]})
    assert 400 <= updated.value.status_code < 500
    # Delete of B's id through A: B's patient survives.
    with contextlib.suppress(FhirResourceNotFound):
        await fhir_a.delete("Patient", b_id)
    still = await fhir_b.read("Patient", b_id)
    assert still["name"][0]["family"] == b.family
    # _include from A's side only ever includes A's resources.
    bundle = await fhir_a.search("Patient", {"_id": b_id, "_revinclude": "Observation:subject"})
    assert not bundle.get("entry")
    assert json.dumps(bundle).count(b.family) == 0
