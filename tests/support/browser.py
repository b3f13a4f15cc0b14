"""A real headless browser for live tests: Debian's Chromium driven through Selenium.

``headless_chromium(...)``            ``with``: a new Chromium (headless, its own temporary
                                      profile) and its WebDriver; quit at the end
``wait_for_url_prefix(driver, prefix)`` wait until the browser is on a URL starting with
                                      ``prefix``; returns that URL
``page_text(driver)``                 the visible text of the current page
``click_and_wait(driver, by, value)``  click an element that loads a new page, and wait until
                                      the old page is gone (a click returns before navigation)

Chromium and chromedriver come from ``ehr.devstack.toolchain.ensure_browser`` (``make test``
runs ``ehr stack browser`` first; here they are apt-installed too when missing and we are root).
Selenium is given both paths, so Selenium Manager never downloads anything.

Selenium calls block. Against an app served in the test's event loop (``support.live_server``),
every call that makes the browser load a page (``get``, ``click`` on a submit button, a wait)
must run in a thread, or the loop cannot serve it and the page load times out::

    @pytest.fixture
    def browser() -> Iterator[WebDriver]:
        with headless_chromium() as driver:  # a sync fixture: starts outside the event loop
            yield driver

    async def test_login(browser: WebDriver) -> None:
        async with live_server(app_for) as base_url:
            await asyncio.to_thread(browser.get, f"{base_url}/login")
            await asyncio.to_thread(fill_and_submit, browser)  # a plain function of the test
            url = await asyncio.to_thread(wait_for_url_prefix, browser, f"{base_url}/done?")

A redirect to an address nobody answers on (an OAuth ``redirect_uri`` of a client that is not
running) still ends on that URL: ``current_url`` is the URL the browser tried, with its query.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from ehr.devstack.toolchain import ensure_browser

__all__ = [
    "PAGE_LOAD_SECONDS",
    "WAIT_SECONDS",
    "click_and_wait",
    "headless_chromium",
    "page_text",
    "wait_for_url_prefix",
]

PAGE_LOAD_SECONDS = 30.0
WAIT_SECONDS = 30.0

# Headless as root in a container: no sandbox (it needs user namespaces), /tmp rather than a small
# /dev/shm, no proxy (only local servers), and nothing running in the background that calls Google.
_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-proxy-server",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--password-store=basic",
)


@contextlib.contextmanager
def headless_chromium(
    *,
    window_size: tuple[int, int] = (1280, 900),
    page_load_timeout: float = PAGE_LOAD_SECONDS,
) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh temporary profile (no cookies); quit at the end."""
    found = ensure_browser()
    with tempfile.TemporaryDirectory(prefix="ehr-chromium-", ignore_cleanup_errors=True) as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(found.chromium)
        for argument in _ARGUMENTS:
            options.add_argument(argument)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={window_size[0]},{window_size[1]}")
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(found.chromedriver))
        )
        try:
            driver.set_page_load_timeout(page_load_timeout)
            yield driver
        finally:
            driver.quit()


def wait_for_url_prefix(driver: WebDriver, prefix: str, timeout: float = WAIT_SECONDS) -> str:
    """The browser's URL once it starts with ``prefix`` (at most ``timeout`` seconds)."""
    try:
        url: str = WebDriverWait(driver, timeout).until(
            lambda current: current.current_url if current.current_url.startswith(prefix) else False
        )
    except TimeoutException:
        raise AssertionError(
            f"the browser is on {driver.current_url!r}, not on {prefix!r}… after {timeout} s; "
            f"the page says: {page_text(driver)[:500]!r}"
        ) from None
    return url


def page_text(driver: WebDriver) -> str:
    """The visible text of the current page (its ``<body>``)."""
    text: str = driver.find_element(By.TAG_NAME, "body").text
    return text


def click_and_wait(driver: WebDriver, by: str, value: str, timeout: float = WAIT_SECONDS) -> None:
    """Click the element found by ``(by, value)`` and wait until the page it was on is replaced
    and the new one has loaded: ``click()`` returns before the browser navigates, so reading
    the page straight after it can see the old page, or an element of it gone stale."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(by, value).click()
    WebDriverWait(driver, timeout).until(expected_conditions.staleness_of(old_page))
    WebDriverWait(driver, timeout).until(
        lambda current: current.execute_script("return document.readyState") == "complete"
    )
