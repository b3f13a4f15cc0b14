"""The SMART App Launch acceptance: a real OAuth client library (authlib, PKCE S256) and a real
headless browser (Chromium through Selenium) on our sign-in and consent pages, against the app
served on a real socket — standalone launch with the patient picker and EHR launch — then the
patient's data read through /fhir with the token."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from support.browser import click_and_wait, headless_chromium, page_text, wait_for_url_prefix
from support.live_server import live_server
from support.smart_apps import People, make_people, register_test_app
from support.tenant_world import World, open_world

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A native app's loopback redirect (RFC 8252) on a port nobody answers: the browser ends there
# and the test reads the code from its URL.
REDIRECT_URI = f"http://127.0.0.1:{_dead_port()}/callback"


@pytest.fixture(scope="module")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, f"{run_id}-browser", ("br",)) as opened:
        yield opened


@pytest.fixture(scope="module")
async def people(world: World, settings: Settings) -> People:
    tenant = world.tenants["br"]
    return await make_people(
        tenant.tenant_id,
        tenant.patient["id"],
        world.sessionmaker,
        settings,
        world.fhir,
        tenant.slug,
    )


@pytest.fixture(scope="module")
async def app_id(world: World) -> str:
    client_id, _ = await register_test_app(
        world.sessionmaker, world.tenants["br"].slug, redirect_uri=REDIRECT_URI
    )
    return client_id


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
async def base_url(settings: Settings) -> AsyncIterator[str]:
    def app_for(url: str) -> Any:
        gateway = settings.gateway.model_copy(update={"public_base_url": url})
        return create_app(settings.model_copy(update={"gateway": gateway}))

    async with live_server(app_for) as url:
        yield url


def _oauth(client_id: str, scope: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def _sign_in(driver: WebDriver, url: str, username: str, password: str) -> None:
    driver.get(url)
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    click_and_wait(driver, By.CSS_SELECTOR, "button[type=submit]")


def _pick_patient(driver: WebDriver, query: str) -> None:
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    click_and_wait(driver, By.CSS_SELECTOR, "form[role=search] button")


def _allow(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "button[value=allow]").click()


async def _read_patient(base_url: str, token: dict[str, Any], patient_id: str) -> int:
    async with httpx.AsyncClient(base_url=base_url) as api:
        answer = await api.get(
            f"/fhir/Patient/{patient_id}",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    return answer.status_code


async def test_standalone_launch_in_a_real_browser(
    browser: WebDriver, base_url: str, world: World, people: People, app_id: str
) -> None:
    tenant = world.tenants["br"]
    oauth = _oauth(app_id, "openid fhirUser launch/patient patient/*.rs offline_access")
    verifier = uuid.uuid4().hex + uuid.uuid4().hex
    url, state = oauth.create_authorization_url(
        f"{base_url}/oauth2/authorize", code_verifier=verifier, aud=f"{base_url}/fhir"
    )
    person = people.clinician
    await asyncio.to_thread(_sign_in, browser, url, person.username, person.password)
    assert "Allow Growth Chart?" in await asyncio.to_thread(page_text, browser)
    await asyncio.to_thread(_pick_patient, browser, tenant.family)
    assert tenant.family in await asyncio.to_thread(page_text, browser)
    await asyncio.to_thread(_allow, browser)
    landed = await asyncio.to_thread(wait_for_url_prefix, browser, REDIRECT_URI)
    async with oauth:
        token = await oauth.fetch_token(
            f"{base_url}/oauth2/token", authorization_response=landed, code_verifier=verifier
        )
    assert state in landed
    assert token["patient"] == tenant.patient["id"]
    assert token["need_patient_banner"] is True
    assert token["refresh_token"]
    assert token["id_token"]
    assert await _read_patient(base_url, token, tenant.patient["id"]) == 200
    assert await _read_patient(base_url, token, tenant.restricted["id"]) in (403, 404)


async def test_ehr_launch_in_a_real_browser(
    browser: WebDriver, base_url: str, world: World, people: People, app_id: str
) -> None:
    tenant = world.tenants["br"]
    person = people.clinician
    async with httpx.AsyncClient(base_url=base_url) as api:
        login = await api.post(
            "/api/auth/login",
            json={"tenant": tenant.slug, "username": person.username, "password": person.password},
        )
        minted = await api.post(
            "/api/smart/launches",
            json={"client_id": app_id, "patient": tenant.patient["id"]},
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
    assert minted.status_code == 201, minted.text
    launch = minted.json()
    oauth = _oauth(app_id, "launch openid fhirUser patient/Patient.rs patient/Observation.rs")
    verifier = uuid.uuid4().hex + uuid.uuid4().hex
    url, _ = oauth.create_authorization_url(
        f"{base_url}/oauth2/authorize",
        code_verifier=verifier,
        aud=launch["iss"],
        launch=launch["launch"],
    )
    await asyncio.to_thread(_sign_in, browser, url, person.username, person.password)
    text = await asyncio.to_thread(page_text, browser)
    assert tenant.family in text  # the launch's patient, no picker
    await asyncio.to_thread(_allow, browser)
    landed = await asyncio.to_thread(wait_for_url_prefix, browser, REDIRECT_URI)
    async with oauth:
        token = await oauth.fetch_token(
            f"{base_url}/oauth2/token", authorization_response=landed, code_verifier=verifier
        )
    assert token["patient"] == tenant.patient["id"]
    assert token["need_patient_banner"] is False
    assert await _read_patient(base_url, token, tenant.patient["id"]) == 200
