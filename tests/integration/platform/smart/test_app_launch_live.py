"""SMART App Launch against the real stack, driven over HTTP through the server-rendered pages:
standalone launch with the patient picker and EHR launch, PKCE, consent, the token response's
context, the id_token, refresh-token rotation, introspection, revocation — and every bad input of
the issue refused with the right OAuth error and nothing issued. (The same flows in a real
headless browser: test_app_launch_browser_live.py.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from jose import jwt
from support.in_process import BASE_URL, client_of, started
from support.smart_apps import (
    REDIRECT_URI,
    People,
    hidden_fields,
    make_people,
    pkce,
    register_test_app,
)
from support.tenant_world import World, open_world

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app
from ehr.platform.auth.permissions import Role

FHIR_BASE = f"{BASE_URL}/fhir"
PEER = (f"10.78.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 40000)


@dataclass(frozen=True)
class Setup:
    world: World
    slug: str
    patient_id: str
    other_patient_id: str
    people: People
    app_id: str
    secret_app_id: str
    secret: str


@pytest.fixture(scope="module")
async def setup(settings: Settings, run_id: str) -> AsyncIterator[Setup]:
    async with open_world(settings, f"{run_id}-launch", ("la",)) as world:
        tenant = world.tenants["la"]
        people = await make_people(
            tenant.tenant_id,
            tenant.patient["id"],
            world.sessionmaker,
            settings,
            world.fhir,
            tenant.slug,
        )
        app_id, _ = await register_test_app(world.sessionmaker, tenant.slug)
        secret_app_id, secret = await register_test_app(
            world.sessionmaker, tenant.slug, confidential=True
        )
        assert secret is not None
        yield Setup(
            world=world,
            slug=tenant.slug,
            patient_id=tenant.patient["id"],
            other_patient_id=tenant.restricted["id"],
            people=people,
            app_id=app_id,
            secret_app_id=secret_app_id,
            secret=secret,
        )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    gateway = settings.gateway.model_copy(update={"public_base_url": BASE_URL})
    async with started(create_app(settings.model_copy(update={"gateway": gateway}))) as running:
        yield running


@pytest.fixture
async def api(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app, peer=PEER) as client:
        yield client


def authorize_params(client_id: str, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        "state": uuid.uuid4().hex,
        "aud": FHIR_BASE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": uuid.uuid4().hex,
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


def redirect_query(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(
    api: httpx.AsyncClient, params: dict[str, str], username: str, password: str
) -> httpx.Response:
    page = await api.get("/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    fields = hidden_fields(page.text)
    return await api.post(
        "/oauth2/authorize/login",
        data={**fields, "username": username, "password": password},
    )


async def consent(
    api: httpx.AsyncClient, page: httpx.Response, *, patient: str | None, scopes: list[str] | None
) -> httpx.Response:
    fields = hidden_fields(page.text)
    offered = scopes if scopes is not None else _ticked(page.text)
    data: list[tuple[str, str]] = [*fields.items(), ("decision", "allow")]
    data += [("scope", s) for s in offered]
    if patient is not None:
        data.append(("patient", patient))
    return await api.post(
        "/oauth2/authorize/consent",
        content=urlencode(data),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def _ticked(page: str) -> list[str]:
    import re

    return re.findall(r'name="scope" value="([^"]+)" checked', page)


async def exchange(
    api: httpx.AsyncClient, client_id: str, code: str, verifier: str, **extra: str
) -> httpx.Response:
    return await api.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
            **extra,
        },
    )


async def standalone_code(
    api: httpx.AsyncClient, setup: Setup, *, scope: str | None = None
) -> tuple[str, str, dict[str, str]]:
    verifier, challenge = pkce()
    params = authorize_params(setup.app_id, challenge, **({"scope": scope} if scope else {}))
    consent_page = await sign_in(
        api, params, setup.people.clinician.username, setup.people.clinician.password
    )
    assert consent_page.status_code == 200, consent_page.text
    fields = hidden_fields(consent_page.text)
    picked = await api.get(
        "/oauth2/authorize/consent",
        params={"request": fields["request"], "q": setup.world.tenants["la"].family},
    )
    assert setup.patient_id in picked.text, picked.text[picked.text.find("<main>") :]
    answer = await consent(api, picked, patient=setup.patient_id, scopes=None)
    query = redirect_query(answer)
    assert query["state"] == params["state"]
    return query["code"], verifier, params


async def test_standalone_launch_picks_the_patient_and_reads_only_their_record(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    code, verifier, params = await standalone_code(api, setup)
    answer = await exchange(api, setup.app_id, code, verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["patient"] == setup.patient_id
    assert body["need_patient_banner"] is True
    assert body["smart_style_url"].endswith("/oauth2/smart-style.json")
    assert "patient/Patient.rs" in body["scope"].split()
    assert "offline_access" in body["scope"].split()
    assert body["refresh_token"]
    # The id_token: signed with our JWKS, for this app, with the nonce and the Practitioner.
    jwks = (await api.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["id_token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(
        body["id_token"], key, algorithms=["ES256"], audience=setup.app_id, issuer=FHIR_BASE
    )
    assert claims["nonce"] == params["nonce"]
    assert claims["fhirUser"] == f"{FHIR_BASE}/Practitioner/{setup.people.practitioner_id}"
    discovery = (await api.get("/fhir/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == claims["iss"]
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    mine = await api.get(f"/fhir/Patient/{setup.patient_id}", headers=bearer)
    assert mine.status_code == 200
    other = await api.get(f"/fhir/Patient/{setup.other_patient_id}", headers=bearer)
    assert other.status_code in (403, 404)
    listed = await api.get("/fhir/Patient", headers=bearer)
    ids = {e["resource"]["id"] for e in listed.json().get("entry", [])}
    assert ids == {setup.patient_id}
    # The app's token is not a key to the business API.
    business = await api.get(f"/api/patients/{setup.patient_id}", headers=bearer)
    assert business.status_code == 403


async def test_ehr_launch_carries_the_patient_the_frontend_chose(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    tenant = setup.world.tenants["la"]
    minted = await api.post(
        "/api/smart/launches",
        json={"client_id": setup.app_id, "patient": setup.patient_id},
        headers=await _login_headers(api, setup),
    )
    assert minted.status_code == 201, minted.text
    launch = minted.json()
    assert launch["iss"] == FHIR_BASE
    assert launch["launch_url"].startswith("https://app.example/launch?")
    verifier, challenge = pkce()
    params = authorize_params(
        setup.app_id,
        challenge,
        scope="launch openid fhirUser patient/Observation.rs",
        launch=launch["launch"],
    )
    page = await sign_in(
        api, params, setup.people.clinician.username, setup.people.clinician.password
    )
    assert page.status_code == 200
    assert tenant.family in page.text  # the launch's patient is shown, no picker
    assert 'name="q"' not in page.text
    code = redirect_query(await consent(api, page, patient=None, scopes=None))["code"]
    body = (await exchange(api, setup.app_id, code, verifier)).json()
    assert body["patient"] == setup.patient_id
    assert body["need_patient_banner"] is False
    assert body["scope"].split() == sorted(
        ["launch", "openid", "fhirUser", "patient/Observation.rs"]
    )
    assert "refresh_token" not in body  # neither offline_access nor online_access
    # The launch is spent.
    again = await api.get("/oauth2/authorize", params={**params, "state": "s2"})
    assert redirect_query(again)["error"] == "invalid_request"
    del tenant


async def _login_headers(api: httpx.AsyncClient, setup: Setup) -> dict[str, str]:
    person = setup.people.clinician
    answer = await api.post(
        "/api/auth/login",
        json={"tenant": setup.slug, "username": person.username, "password": person.password},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_grant(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    code, verifier, _ = await standalone_code(api, setup)
    first = (await exchange(api, setup.app_id, code, verifier)).json()
    refreshed = await api.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": setup.app_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == setup.patient_id
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await api.get(f"/fhir/Patient/{setup.patient_id}", headers=bearer)).status_code == 200
    replay = await api.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": setup.app_id,
        },
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The whole family ends: the newest refresh token and its access token too.
    after = await api.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second["refresh_token"],
            "client_id": setup.app_id,
        },
    )
    assert after.json()["error"] == "invalid_grant"
    assert (await api.get(f"/fhir/Patient/{setup.patient_id}", headers=bearer)).status_code == 401


async def test_introspection_and_revocation_of_the_clients_own_tokens(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    code, verifier, _ = await standalone_code(api, setup)
    body = (await exchange(api, setup.app_id, code, verifier)).json()
    seen = await api.post(
        "/oauth2/introspect", data={"token": body["access_token"], "client_id": setup.app_id}
    )
    assert seen.status_code == 200
    info = seen.json()
    assert info["active"] is True
    assert info["client_id"] == setup.app_id
    assert info["patient"] == setup.patient_id
    assert info["fhirUser"].endswith(f"/Practitioner/{setup.people.practitioner_id}")
    # Another client learns nothing about it.
    foreign = await api.post(
        "/oauth2/introspect",
        data={"token": body["access_token"]},
        auth=(setup.secret_app_id, setup.secret),
    )
    assert foreign.json() == {"active": False}
    revoked = await api.post(
        "/oauth2/revoke", data={"token": body["refresh_token"], "client_id": setup.app_id}
    )
    assert revoked.status_code == 200
    gone = await api.post(
        "/oauth2/introspect", data={"token": body["access_token"], "client_id": setup.app_id}
    )
    assert gone.json() == {"active": False}
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await api.get(f"/fhir/Patient/{setup.patient_id}", headers=bearer)).status_code == 401


async def test_a_confidential_app_authenticates_with_its_secret(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    verifier, challenge = pkce()
    params = authorize_params(setup.secret_app_id, challenge, scope="launch/patient patient/*.rs")
    page = await sign_in(api, params, setup.people.portal.username, setup.people.portal.password)
    assert 'name="q"' not in page.text  # a portal user's patient is their own
    code = redirect_query(await consent(api, page, patient=None, scopes=None))["code"]
    no_secret = await exchange(api, setup.secret_app_id, code, verifier)
    assert no_secret.status_code == 401
    assert no_secret.json()["error"] == "invalid_client"
    # The code was not spent by the unauthenticated attempt.
    answer = await api.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(setup.secret_app_id, setup.secret),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["patient"] == setup.patient_id
    assert all(
        s.startswith("patient/") or "/" not in s or s == "launch/patient"
        for s in body["scope"].split()
    )


async def test_a_user_with_mfa_passes_the_second_factor(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    verifier, challenge = pkce()
    params = authorize_params(setup.app_id, challenge, scope="openid profile user/*.rs")
    person = setup.people.with_mfa
    second = await sign_in(api, params, person.username, person.password)
    assert "Two-step verification" in second.text
    fields = hidden_fields(second.text)
    page = await api.post(
        "/oauth2/authorize/mfa", data={**fields, "recovery_code": person.recovery_codes[0]}
    )
    assert "Allow Growth Chart?" in page.text
    code = redirect_query(await consent(api, page, patient=None, scopes=None))["code"]
    body = (await exchange(api, setup.app_id, code, verifier)).json()
    assert "patient" not in body
    assert "user/Observation.rs" in body["scope"].split()
    claims = jwt.get_unverified_claims(body["id_token"])
    assert claims["preferred_username"] == person.username


# --- bad input ------------------------------------------------------------------------------


async def test_an_unknown_client_or_redirect_uri_is_told_on_the_page_never_redirected(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    _, challenge = pkce()
    for params in (
        authorize_params(setup.app_id, challenge, redirect_uri="https://evil.example/cb"),
        authorize_params(setup.app_id, challenge, redirect_uri=REDIRECT_URI + "/"),
        authorize_params("0" * 40, challenge),
    ):
        answer = await api.get("/oauth2/authorize", params=params)
        assert answer.status_code == 400
        assert "location" not in answer.headers
        assert "cannot continue" in answer.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "patient/*.rs system/*.rs"}, "invalid_scope"),
        ({"scope": "patient/*.cruds"}, "invalid_scope"),
        ({"launch": "not-a-launch-we-minted"}, "invalid_request"),
        ({"scope": "launch patient/*.rs"}, "invalid_request"),
    ],
)
async def test_bad_authorization_requests_go_back_with_the_oauth_error(
    api: httpx.AsyncClient, setup: Setup, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(setup.app_id, challenge, **overrides)
    query = redirect_query(await api.get("/oauth2/authorize", params=params))
    assert query["error"] == error
    assert query["state"] == params["state"]
    assert "code" not in query


async def test_a_consent_without_its_csrf_token_issues_nothing(
    api: httpx.AsyncClient, app: Any, setup: Setup
) -> None:
    _, challenge = pkce()
    page = await sign_in(
        api,
        authorize_params(setup.app_id, challenge),
        setup.people.clinician.username,
        setup.people.clinician.password,
    )
    fields = hidden_fields(page.text)
    forged = {**fields, "csrf": "x" * 43, "decision": "allow", "scope": "patient/Patient.rs"}
    answer = await api.post("/oauth2/authorize/consent", data=forged)
    assert answer.status_code == 400
    assert "CSRF" in answer.text
    # Another browser (no cookie) with the right form field is refused too.
    async with client_of(app, peer=PEER) as stranger:
        answer = await stranger.post(
            "/oauth2/authorize/consent", data={**fields, "decision": "allow"}
        )
    assert answer.status_code == 400
    assert "location" not in answer.headers


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    code, verifier, _ = await standalone_code(api, setup)
    first = await exchange(api, setup.app_id, code, verifier)
    assert first.status_code == 200
    again = await exchange(api, setup.app_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await api.get(f"/fhir/Patient/{setup.patient_id}", headers=bearer)).status_code == 401


async def test_a_wrong_verifier_or_redirect_uri_spends_the_code(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    code, verifier, _ = await standalone_code(api, setup)
    wrong, _ = pkce()
    answer = await exchange(api, setup.app_id, code, wrong)
    assert answer.json()["error"] == "invalid_grant"
    assert (await exchange(api, setup.app_id, code, verifier)).json()["error"] == "invalid_grant"
    code, verifier, _ = await standalone_code(api, setup)
    answer = await exchange(
        api, setup.app_id, code, verifier, redirect_uri="https://app.example/other"
    )
    assert answer.json()["error"] == "invalid_grant"


async def test_a_denied_consent_tells_the_app_access_denied(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    _, challenge = pkce()
    params = authorize_params(setup.app_id, challenge)
    page = await sign_in(
        api, params, setup.people.clinician.username, setup.people.clinician.password
    )
    answer = await api.post(
        "/oauth2/authorize/consent", data={**hidden_fields(page.text), "decision": "deny"}
    )
    query = redirect_query(answer)
    assert query == {
        "error": "access_denied",
        "error_description": query["error_description"],
        "state": params["state"],
    }


async def test_a_launch_minted_for_another_user_is_access_denied(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    minted = await api.post(
        "/api/smart/launches",
        json={"client_id": setup.app_id, "patient": setup.patient_id},
        headers=await _login_headers(api, setup),
    )
    _, challenge = pkce()
    params = authorize_params(
        setup.app_id, challenge, scope="launch patient/*.rs", launch=minted.json()["launch"]
    )
    person = setup.people.portal
    answer = await sign_in(api, params, person.username, person.password)
    assert redirect_query(answer)["error"] == "access_denied"


async def test_launch_minting_checks_the_patient_and_the_app(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    headers = await _login_headers(api, setup)
    missing = await api.post(
        "/api/smart/launches",
        json={"client_id": setup.app_id, "patient": "no-such-patient"},
        headers=headers,
    )
    assert missing.status_code == 404
    unknown = await api.post(
        "/api/smart/launches",
        json={"client_id": "f" * 40, "patient": setup.patient_id},
        headers=headers,
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    portal = setup.world.tenants["la"].auth(Role.PATIENT)
    other = await api.post(
        "/api/smart/launches",
        json={"client_id": setup.app_id, "patient": setup.other_patient_id},
        headers=portal,
    )
    assert other.status_code == 404


async def test_a_wrong_password_shows_the_page_again_and_issues_nothing(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    _, challenge = pkce()
    answer = await sign_in(
        api, authorize_params(setup.app_id, challenge), setup.people.clinician.username, "wrong"
    )
    assert answer.status_code == 401
    assert "Invalid username or password" in answer.text
    assert "location" not in answer.headers


async def test_the_admin_api_registers_lists_and_disables_apps(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    admin = setup.world.tenants["la"].auth(Role.ADMIN)
    made = await api.post(
        "/api/admin/smart/clients",
        json={
            "kind": "confidential_app",
            "name": "Registry check",
            "scopes": ["patient/*.rs"],
            "redirect_uris": ["https://registry.example/cb"],
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["auth_method"] == "client_secret_basic"
    assert created["client_secret"]
    listed = await api.get("/api/admin/smart/clients", headers=admin)
    entry = next(c for c in listed.json() if c["client_id"] == created["client_id"])
    assert entry["client_secret"] is None
    bad = await api.post(
        "/api/admin/smart/clients",
        json={
            "kind": "public_app",
            "name": "x",
            "scopes": ["patient/*.rs"],
            "redirect_uris": ["http://not-loopback.example/cb"],
        },
        headers=admin,
    )
    assert bad.status_code == 422
    done = await api.post(f"/api/admin/smart/clients/{created['client_id']}/disable", headers=admin)
    assert done.status_code == 204
    clinician = setup.world.tenants["la"].auth(Role.PHYSICIAN)
    forbidden = await api.get("/api/admin/smart/clients", headers=clinician)
    assert forbidden.status_code == 403


async def test_hostile_input_at_the_oauth_endpoints_is_a_clear_4xx(
    api: httpx.AsyncClient, setup: Setup
) -> None:
    for token in ("a.b.c", "x" * 9000, "eyJhbGciOiJub25lIn0.e30.", "%00\u202e"):
        seen = await api.post(
            "/oauth2/introspect", data={"token": token, "client_id": setup.app_id}
        )
        assert seen.status_code == 200
        assert seen.json() == {"active": False}
        gone = await api.post("/oauth2/revoke", data={"token": token, "client_id": setup.app_id})
        assert gone.status_code == 200
    empty = await api.post("/oauth2/introspect", data={"client_id": setup.app_id})
    assert empty.json()["error"] == "invalid_request"
    repeated = await api.post(
        "/oauth2/token",
        content="grant_type=authorization_code&code=a&code=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400
    assert repeated.json()["error"] == "invalid_request"
    pages = [
        await api.post("/oauth2/authorize/login", json={"request": "x"}),
        await api.post("/oauth2/authorize/consent", data={"request": "not-a-uuid", "csrf": "x"}),
        await api.get("/oauth2/authorize/consent", params={"request": "x" * 65}),
    ]
    assert [p.status_code for p in pages][:2] == [400, 400]
    assert pages[2].status_code in (400, 422)
