"""The tenant/role acceptance matrix through ``/fhir``: every role x every interaction type.

Expectations are derived from the role's SMART scopes (``scopes_for``, i.e. the permission table),
read here with a deliberately simple scope reader, not from the policy under test: an interaction
is allowed when some scope of the role's context names its resource type (or ``*``) with every
letter it needs (read/vread ``r``, search ``s``, create ``c``, update/patch ``u``, delete ``d``,
history ``r``+``s``; a batch needs what its entry needs; ``capabilities`` always; the operation
probed, ``ValueSet/$expand``, any ``r``; admin operations never).

Allowed: the real status (200/201, or for ``$expand`` of an unknown ValueSet anything but 403).
Denied: 403 OperationOutcome. Then tenant A's users try to reach tenant B's patient by every
interaction type; and the portal user (patient context) tries to reach another patient's data.

Uses the gateway's ``gw`` world (tests/integration/platform/gateway/conftest.py, built with the
acceptance matrix's helpers: two tenants, a user of every role, real tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support.tenant_world import TenantWorld, World

from ehr.platform.auth.api_keys import create_api_key
from ehr.platform.auth.permissions import PERMISSION_SCOPES, Role, scopes_for

pytestmark = pytest.mark.integration

FHIR_JSON = "application/fhir+json"


def role_grants(role: Role, resource_type: str, letters: str) -> bool:
    """Scopes add up: ``Patient.rs`` + ``Patient.cu`` grant ``us``."""
    context = "patient" if role is Role.PATIENT else "user"
    granted: set[str] = set()
    for scope in scopes_for([role]):
        ctx, _, rest = scope.partition("/")
        rtype, _, letters_granted = rest.partition(".")
        if ctx == context and rtype in (resource_type, "*"):
            granted |= set(letters_granted)
    return set(letters) <= granted


def any_read(role: Role) -> bool:
    return any("r" in s.rpartition(".")[2] for s in scopes_for([role]) if "/" in s)


@dataclass(frozen=True)
class Case:
    method: str
    url: str
    allowed: bool
    ok: tuple[int, ...]  # statuses an allowed caller gets
    body: Any = None
    content_type: str = FHIR_JSON


def _observation(tenant: TenantWorld, run: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"tag": [{"system": "urn:ehr:test", "code": run}]},
        "status": "final",
        "code": {"text": "matrix"},
        "subject": {"reference": f"Patient/{tenant.patient['id']}"},
    }


def cases(world: World, tenant: TenantWorld, role: Role, obs_id: str) -> dict[str, Case]:
    pid = tenant.patient["id"]
    g = role_grants
    return {
        "read": Case("GET", f"/fhir/Patient/{pid}", g(role, "Patient", "r"), (200,)),
        "vread": Case("GET", f"/fhir/Patient/{pid}/_history/1", g(role, "Patient", "r"), (200,)),
        "search": Case("GET", f"/fhir/Patient?_id={pid}", g(role, "Patient", "s"), (200,)),
        "create": Case(
            "POST",
            "/fhir/Observation",
            g(role, "Observation", "c"),
            (201,),
            _observation(tenant, world.run),
        ),
        "update": Case(
            "PUT", f"/fhir/Patient/{pid}", g(role, "Patient", "u"), (200,), tenant.patient
        ),
        "patch": Case(
            "PATCH",
            f"/fhir/Patient/{pid}",
            g(role, "Patient", "u"),
            (200,),
            [{"op": "replace", "path": "/gender", "value": "unknown"}],
            "application/json-patch+json",
        ),
        "delete": Case(
            "DELETE", f"/fhir/Observation/{obs_id}", g(role, "Observation", "d"), (200, 204)
        ),
        "history": Case("GET", f"/fhir/Patient/{pid}/_history", g(role, "Patient", "rs"), (200,)),
        "transaction": Case(
            "POST",
            "/fhir",
            g(role, "Patient", "r"),
            (200,),
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": f"Patient/{pid}"}}],
            },
        ),
        "capabilities": Case("GET", "/fhir/metadata", True, (200,)),
        "operation": Case(
            "GET",
            "/fhir/ValueSet/$expand?url=urn:ehr:test:no-such-valueset",
            any_read(role),
            (),
        ),
        "admin-operation": Case("POST", "/fhir/$reindex", False, ()),
    }


async def send(
    api: httpx.AsyncClient, tenant: TenantWorld, role: Role, case: Case
) -> httpx.Response:
    headers = {**tenant.auth(role), "Accept": FHIR_JSON}
    content = None
    if case.body is not None:
        headers["Content-Type"] = case.content_type
        content = json.dumps(case.body)
    return await api.request(case.method, case.url, headers=headers, content=content)


async def _throwaway_observation(world: World, tenant: TenantWorld) -> str:
    created = await world.fhir.for_tenant(tenant.slug).create(_observation(tenant, world.run))
    return str(created["id"])


@pytest.mark.parametrize("label", ["ga", "gb"])
async def test_every_role_x_every_interaction_through_fhir(
    api: httpx.AsyncClient, gw: World, label: str
) -> None:
    tenant = gw.tenants[label]
    obs_id = await _throwaway_observation(gw, tenant)
    failures: list[str] = []
    for role in Role:
        for name, case in cases(gw, tenant, role, obs_id).items():
            response = await send(api, tenant, role, case)
            where = f"{role.value} {name} {case.method} {case.url} → {response.status_code}"
            if case.allowed:
                if response.status_code in (401, 403):
                    failures.append(f"allowed but refused: {where} {response.text[:300]}")
                elif case.ok and response.status_code not in case.ok:
                    failures.append(f"allowed, expected {case.ok}: {where} {response.text[:300]}")
            elif response.status_code != 403:
                failures.append(f"denied but not 403: {where} {response.text[:300]}")
            elif response.json().get("resourceType") != "OperationOutcome":
                failures.append(f"403 is not an OperationOutcome: {where}")
    assert not failures, "\n".join(failures)


def _no_data_of(tenant: TenantWorld, response: httpx.Response) -> None:
    text = response.text
    for secret in (tenant.family, tenant.restricted["name"][0]["family"], tenant.slug):
        assert secret not in text, f"tenant {tenant.slug}'s data leaked: {text[:300]}"


def _cross_probes(a: TenantWorld, b: TenantWorld) -> dict[str, tuple[str, str, Any, str]]:
    bid = b.patient["id"]
    changed = {**b.patient, "gender": "female"}
    return {
        "read": ("GET", f"/fhir/Patient/{bid}", None, FHIR_JSON),
        "vread": ("GET", f"/fhir/Patient/{bid}/_history/1", None, FHIR_JSON),
        "search": ("GET", f"/fhir/Patient?_id={bid}", None, FHIR_JSON),
        "search-name": ("GET", f"/fhir/Patient?name={b.family}", None, FHIR_JSON),
        "history": ("GET", f"/fhir/Patient/{bid}/_history", None, FHIR_JSON),
        "update": ("PUT", f"/fhir/Patient/{bid}", changed, FHIR_JSON),
        "patch": (
            "PATCH",
            f"/fhir/Patient/{bid}",
            [{"op": "replace", "path": "/gender", "value": "female"}],
            "application/json-patch+json",
        ),
        "delete": ("DELETE", f"/fhir/Patient/{bid}", None, FHIR_JSON),
        "transaction": (
            "POST",
            "/fhir",
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": f"Patient/{bid}"}}],
            },
            FHIR_JSON,
        ),
        "create-reference": (
            "POST",
            "/fhir/Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": f"Patient/{bid}"},
            },
            FHIR_JSON,
        ),
    }


@pytest.mark.parametrize("role", list(Role))
async def test_tenant_a_cannot_reach_tenant_b_through_fhir(
    api: httpx.AsyncClient, gw: World, role: Role
) -> None:
    a, b = gw.tenants["ga"], gw.tenants["gb"]
    failures: list[str] = []
    for name, (method, url, body, content_type) in _cross_probes(a, b).items():
        headers = {**a.auth(role), "Accept": FHIR_JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        response = await api.request(
            method, url, headers=headers, content=json.dumps(body) if body is not None else None
        )
        where = f"{role.value} {name} {method} {url} → {response.status_code}"
        if name == "search-name":  # the query (B's family name) is echoed in Bundle.link
            assert not response.json().get("entry"), where
        else:
            try:
                _no_data_of(b, response)
            except AssertionError as error:
                failures.append(f"{where}: {error}")
        if 200 <= response.status_code < 300 and method != "GET" and name != "transaction":
            failures.append(f"a write into B succeeded: {where}")
        if response.status_code == 200 and name in ("search", "search-name"):
            assert not response.json().get("entry"), where
    still = await gw.fhir.for_tenant(b.slug).read("Patient", b.patient["id"])
    assert still["name"][0]["family"] == b.family
    assert still.get("gender") == b.patient.get("gender")
    assert not failures, "\n".join(failures)


async def test_portal_user_stays_in_their_compartment(api: httpx.AsyncClient, gw: World) -> None:
    """Patient context: the other patient's Patient and Observation are unreachable."""
    tenant = gw.tenants["ga"]
    fhir = gw.fhir.for_tenant(tenant.slug)
    mine = await fhir.create(_observation(tenant, gw.run))
    other_obs = await fhir.create(
        {
            **_observation(tenant, gw.run),
            "subject": {"reference": f"Patient/{tenant.restricted['id']}"},
            "performer": [{"reference": f"Patient/{tenant.patient['id']}"}],
            "valueString": "zzsecret-of-the-other-patient",
        }
    )
    headers = {**tenant.auth(Role.PATIENT), "Accept": FHIR_JSON}
    other = tenant.restricted["id"]
    secret = "zzsecret-of-the-other-patient"

    async def get(url: str) -> httpx.Response:
        response = await api.get(url, headers=headers)
        assert secret not in response.text, url
        assert tenant.restricted["name"][0]["family"] not in response.text, url
        return response

    assert (await get(f"/fhir/Observation/{other_obs['id']}")).status_code == 404
    assert (await get(f"/fhir/Patient/{other}")).status_code == 404
    own = await get(f"/fhir/Observation/{mine['id']}")
    assert own.status_code == 200, own.text
    assert own.json()["id"] == mine["id"]
    searched = await get("/fhir/Observation?code:text=matrix")
    assert searched.status_code == 200, searched.text
    found = {e["resource"]["id"] for e in searched.json().get("entry", [])}
    assert mine["id"] in found
    assert other_obs["id"] not in found
    for url in (
        f"/fhir/Observation?patient=Patient/{other}",
        f"/fhir/Observation?subject=Patient/{other}",
        "/fhir/Observation?_include=Observation:performer",
        f"/fhir/Patient?_id={tenant.patient['id']}&_revinclude=Observation:performer",
        "/fhir/Observation?subject.name=Zzauthz",
        f"/fhir/Patient?_has:Observation:performer:subject=Patient/{other}",
        f"/fhir/Observation/{other_obs['id']}/_history/1",
    ):
        response = await get(url)
        assert response.status_code in (403, 404), f"{url} → {response.status_code}"
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation/{other_obs['id']}"}}],
    }
    refused = await api.post(
        "/fhir",
        headers={**headers, "Content-Type": FHIR_JSON},
        content=json.dumps(batch),
    )
    assert refused.status_code == 403, refused.text
    assert secret not in refused.text


# --- every role x every resource type its scopes name (and some no role has) -------------------

SCOPED_TYPES = sorted(
    {scope.split(".")[0] for scopes in PERMISSION_SCOPES.values() for scope in scopes}
)
UNSCOPED_TYPES = ["Group", "AuditEvent", "Provenance", "Person"]


@pytest.mark.parametrize("label", ["ga", "gb"])
async def test_every_role_x_every_type_search_and_post_search(
    api: httpx.AsyncClient, gw: World, label: str
) -> None:
    tenant = gw.tenants[label]
    failures: list[str] = []
    for role in Role:
        headers = {**tenant.auth(role), "Accept": FHIR_JSON}
        for resource_type in [*SCOPED_TYPES, *UNSCOPED_TYPES]:
            allowed = role_grants(role, resource_type, "s")
            get = await api.get(f"/fhir/{resource_type}?_count=1", headers=headers)
            post = await api.post(
                f"/fhir/{resource_type}/_search",
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                content=b"_count=1",
            )
            for how, response in (("GET", get), ("POST _search", post)):
                where = f"{role.value} {how} {resource_type} → {response.status_code}"
                if allowed and response.status_code != 200:
                    failures.append(f"allowed, expected 200: {where} {response.text[:200]}")
                if not allowed and response.status_code != 403:
                    failures.append(f"denied but not 403: {where}")
    assert not failures, "\n".join(failures)


async def test_conditional_update_needs_update_and_search(
    api: httpx.AsyncClient, gw: World
) -> None:
    tenant = gw.tenants["ga"]
    identifier = tenant.patient["identifier"][0]
    for role in Role:
        response = await api.put(
            f"/fhir/Patient?identifier={identifier['system']}|{identifier['value']}",
            headers={**tenant.auth(role), "Accept": FHIR_JSON, "Content-Type": FHIR_JSON},
            content=json.dumps(tenant.patient),
        )
        if role_grants(role, "Patient", "us"):
            assert response.status_code == 200, f"{role}: {response.text}"
        else:
            assert response.status_code == 403, f"{role}: {response.status_code}"


# --- API keys: system/ scopes only ------------------------------------------------------------


async def _api_key(gw: World, tenant: TenantWorld, *scopes: str) -> dict[str, str]:
    async with gw.sessionmaker() as session, session.begin():
        _, plaintext = await create_api_key(
            session,
            tenant_id=tenant.tenant_id,
            name=f"matrix {' '.join(scopes)}",
            scopes=scopes,
            ttl_days=1,
            created_by="test",
        )
    return {"X-API-Key": plaintext, "Accept": FHIR_JSON}


async def test_api_keys_use_system_scopes(api: httpx.AsyncClient, gw: World) -> None:
    a, b = gw.tenants["ga"], gw.tenants["gb"]
    pid = a.patient["id"]
    reader = await _api_key(gw, a, "system/Patient.rs")
    assert (await api.get(f"/fhir/Patient/{pid}", headers=reader)).status_code == 200
    assert (await api.get(f"/fhir/Patient?_id={pid}", headers=reader)).status_code == 200
    assert (await api.get("/fhir/Observation", headers=reader)).status_code == 403
    assert (await api.put(f"/fhir/Patient/{pid}", headers=reader)).status_code in (403, 415)
    # Another tenant's id through A's key: not found, nothing of B.
    other = await api.get(f"/fhir/Patient/{b.patient['id']}", headers=reader)
    assert other.status_code == 404
    assert b.family not in other.text
    # user/ and patient/ scopes on a key grant nothing.
    for scope in ("user/Patient.rs", "patient/Patient.rs"):
        key = await _api_key(gw, a, scope)
        assert (await api.get(f"/fhir/Patient/{pid}", headers=key)).status_code == 403
    # Bulk export: system/*.rs only; admin operations: never.
    exporter = await _api_key(gw, a, "system/*.rs")
    assert (await api.get("/fhir/$export", headers=reader)).status_code == 403
    export = await api.get("/fhir/$export", headers={**exporter, "Prefer": "respond-async"})
    assert export.status_code != 403, export.text
    everything = await _api_key(gw, a, "system/*.cruds")
    for op in ("$reindex", "$expunge", "$partition-management-create-partition"):
        assert (await api.post(f"/fhir/{op}", headers=everything)).status_code == 403


async def test_a_system_key_with_every_scope_cannot_reach_tenant_b(
    api: httpx.AsyncClient, gw: World
) -> None:
    """The most privileged credential of tenant A, every interaction aimed at tenant B."""
    a, b = gw.tenants["ga"], gw.tenants["gb"]
    key = await _api_key(gw, a, "system/*.cruds")
    bid = b.patient["id"]
    identifier = b.patient["identifier"][0]
    by_identifier = f"identifier={identifier['system']}|{identifier['value']}"
    failures: list[str] = []
    probes = [
        *_cross_probes(a, b).items(),
        ("everything", ("GET", f"/fhir/Patient/{bid}/$everything", None, FHIR_JSON)),
        ("meta", ("GET", f"/fhir/Patient/{bid}/$meta", None, FHIR_JSON)),
        ("conditional-delete", ("DELETE", f"/fhir/Patient?{by_identifier}", None, FHIR_JSON)),
        (
            "conditional-patch",
            (
                "PATCH",
                f"/fhir/Patient?{by_identifier}",
                [{"op": "replace", "path": "/gender", "value": "female"}],
                "application/json-patch+json",
            ),
        ),
        ("search-identifier", ("GET", f"/fhir/Patient?{by_identifier}", None, FHIR_JSON)),
        ("revinclude", ("GET", f"/fhir/Patient?_id={bid}&_revinclude=*", None, FHIR_JSON)),
    ]
    for name, (method, url, body, content_type) in probes:
        headers = dict(key)
        if body is not None:
            headers["Content-Type"] = content_type
        response = await api.request(
            method, url, headers=headers, content=json.dumps(body) if body is not None else None
        )
        where = f"system key {name} {method} {url} → {response.status_code}"
        if name == "search-name":
            if response.status_code == 200 and response.json().get("entry"):
                failures.append(f"found B's patient: {where}")
            continue
        try:
            _no_data_of(b, response)
        except AssertionError as error:
            failures.append(f"{where}: {error}")
        if (
            response.status_code == 200
            and name.startswith(("search", "revinclude"))
            and response.json().get("entry")
        ):
            failures.append(f"found B's data: {where}")
    still = await gw.fhir.for_tenant(b.slug).read("Patient", bid)
    assert still["name"][0]["family"] == b.family
    assert still.get("gender") == b.patient.get("gender")
    assert not failures, "\n".join(failures)


async def test_portal_post_search_is_constrained(api: httpx.AsyncClient, gw: World) -> None:
    tenant = gw.tenants["gb"]
    fhir = gw.fhir.for_tenant(tenant.slug)
    mine = await fhir.create(_observation(tenant, gw.run))
    theirs = await fhir.create(
        {
            **_observation(tenant, gw.run),
            "subject": {"reference": f"Patient/{tenant.restricted['id']}"},
        }
    )
    headers = {
        **tenant.auth(Role.PATIENT),
        "Accept": FHIR_JSON,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    found = await api.post(
        "/fhir/Observation/_search", headers=headers, content=b"code:text=matrix"
    )
    assert found.status_code == 200, found.text
    ids = {e["resource"]["id"] for e in found.json().get("entry", [])}
    assert mine["id"] in ids
    assert theirs["id"] not in ids
    for form in (
        f"patient=Patient/{tenant.restricted['id']}",
        f"_id={theirs['id']}&subject.name=Zz",
        "_revinclude=Observation:performer",
    ):
        refused = await api.post(
            "/fhir/Observation/_search", headers=headers, content=form.encode()
        )
        assert refused.status_code == 403, f"{form}: {refused.status_code}"
