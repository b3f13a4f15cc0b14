"""The browser harness itself: a real headless Chromium (``support.browser``) against an app on a
real socket (``support.live_server``), the way a login/consent flow is tested.

The app is a tiny one of this file (not the product): a server-rendered form, posted
``application/x-www-form-urlencoded``, answered by a 303 to an absolute URL built from the base
URL the app was created with (as the product builds URLs from its public base URL). Selenium runs
in a thread (``asyncio.to_thread``) while uvicorn serves in the test's event loop.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import parse_qs, urlencode

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from support.browser import headless_chromium, page_text, wait_for_url_prefix
from support.live_server import live_server
from support.ports import free_port

pytestmark = pytest.mark.integration

STATE = "state-4f1c"
NAME = "Ada <Lovelace> & co"


def _sign_in_app(base_url: str, redirect_base: str | None, seen: list[str]) -> FastAPI:
    """GET /sign-in: a form; POST /sign-in: 303 to ``redirect_base`` (default ``{base_url}/done``)
    with ``code`` and ``state``; GET /done: who signed in. ``seen`` gets each request line."""
    app = FastAPI()
    target = redirect_base or f"{base_url}/done"

    @app.middleware("http")
    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        seen.append(f"{request.method} {request.url.path}{query}")
        return await call_next(request)

    @app.get("/sign-in", response_class=HTMLResponse)
    async def form(state: str) -> str:
        return f"""<!doctype html><title>Sign in</title>
<form method="post" action="/sign-in">
  <input type="hidden" name="state" value="{html.escape(state)}">
  <label>Name <input id="name" name="name" required></label>
  <button id="submit" type="submit">Sign in</button>
</form>"""

    @app.post("/sign-in")
    async def submit(request: Request) -> RedirectResponse:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        fields = parse_qs((await request.body()).decode(), strict_parsing=True)
        query = urlencode({"code": f"code-for-{fields['name'][0]}", "state": fields["state"][0]})
        return RedirectResponse(f"{target}?{query}", status_code=303)

    @app.get("/done", response_class=HTMLResponse)
    async def done(code: str, state: str) -> str:
        return f"<!doctype html><p>Signed in: {html.escape(code)} ({html.escape(state)})</p>"

    return app


def _fill_and_submit(driver: WebDriver, name: str) -> None:
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "submit").click()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


async def test_a_posted_form_ends_on_the_redirect_target_with_its_query(browser: WebDriver) -> None:
    seen: list[str] = []
    async with live_server(lambda base_url: _sign_in_app(base_url, None, seen)) as base_url:
        await asyncio.to_thread(browser.get, f"{base_url}/sign-in?state={STATE}")
        assert browser.title == "Sign in"
        await asyncio.to_thread(_fill_and_submit, browser, NAME)
        url = await asyncio.to_thread(wait_for_url_prefix, browser, f"{base_url}/done?")
        text = await asyncio.to_thread(page_text, browser)

    expected_query = urlencode({"code": f"code-for-{NAME}", "state": STATE})
    assert url == f"{base_url}/done?{expected_query}"
    assert text == f"Signed in: code-for-{NAME} ({STATE})"
    # Real HTTP from the browser: the form page, the POST, then the GET the 303 asked for.
    assert [line for line in seen if not line.startswith("GET /favicon")] == [
        f"GET /sign-in?state={STATE}",
        "POST /sign-in",
        f"GET /done?{expected_query}",
    ]


async def test_a_redirect_to_an_address_nobody_answers_keeps_its_url(browser: WebDriver) -> None:
    """As an OAuth ``redirect_uri`` of a client that does not run: the URL is still readable."""
    callback = f"http://127.0.0.1:{free_port()}/callback"
    seen: list[str] = []
    async with live_server(lambda base_url: _sign_in_app(base_url, callback, seen)) as base_url:
        await asyncio.to_thread(browser.get, f"{base_url}/sign-in?state={STATE}")
        await asyncio.to_thread(_fill_and_submit, browser, "Grace")
        url = await asyncio.to_thread(wait_for_url_prefix, browser, f"{callback}?")

    assert parse_qs(url.split("?", 1)[1]) == {"code": ["code-for-Grace"], "state": [STATE]}
