"""A real browser (Debian's headless Chromium, driven by Playwright) uses the console.

The console serves a gateway store that holds real transfers (through the in-memory gateway pair:
one delivered, one refused by the receiver and so failed) on a loopback port. The browser logs in,
filters the transfers, opens the failed one, sees its error code explained, and a screenshot is
saved to ``$OSO_TEST_OUTPUT/console.png`` (default ``<repo>/test-output``). No browser is ever
downloaded: the test skips (or, with OSO_TEST_REQUIRE_CHROMIUM=1, fails) without
``/usr/bin/chromium`` or the ``playwright`` package.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, require
from console_support import ADMIN_NAME, PASSWORD, add_operator, cheap_hasher, console_app
from gateway_pair import (
    SENDER_OIN,
    GatewayPair,
    dev_directory,
    make_pair,
    with_sending_school,
)

from oso_gateway.dossier.generator import generate_dossier
from oso_gateway.runtime import start_console_in_thread
from oso_gateway.store import models as m

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _output_dir() -> Path:
    path = Path(os.environ.get("OSO_TEST_OUTPUT") or REPO / "test-output")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayPair]:
    require(
        "chromium",
        CHROMIUM.is_file() and importlib.util.find_spec("playwright") is not None,
        "needs Debian's chromium (/usr/bin/chromium) and the playwright package",
    )
    cheap_hasher(monkeypatch)
    gateways = make_pair(tmp_path)
    yield gateways
    gateways.close()


def _send(pair: GatewayPair, *, seed: int, brin: str | None = None) -> None:
    data = generate_dossier(overstap="POVO", seed=seed, now=pair.clock())
    if brin is not None:
        data = with_sending_school(data, brin)
    prepared = pair.prepare(data)
    pair.outbox.enqueue(prepared)
    pair.outbox.run_once()


def test_a_browser_logs_in_filters_transfers_and_opens_a_failed_one(
    pair: GatewayPair, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    _send(pair, seed=31)
    pair.set_sender_directory(dev_directory(extra_mandates={"03EF00": [SENDER_OIN]}))
    _send(pair, seed=32, brin="03EF")
    failed = pair.sender_store.list_messages(statuses=[m.FAILED])
    assert len(failed) == 1
    store = pair.sender_store
    add_operator(store, ADMIN_NAME, "admin")
    app = console_app(tmp_path, store, port=0)
    settings = app.extensions["oso_console"].settings
    server = start_console_in_thread(settings, app=app, port=0)
    screenshot = _output_dir() / "console.png"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(server.url)  # anonymous: sent to the login page
                assert page.url.endswith("/console/login")
                page.fill("#name", ADMIN_NAME)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                assert page.url.endswith("/console/")
                assert page.locator("h1").inner_text() == "Dashboard"

                page.click("nav >> text=Transfers")
                assert page.locator("table.list tbody tr").count() == 2
                page.select_option("select[name=status]", "failed")
                page.select_option("select[name=direction]", "out")
                page.click("form.filters button[type=submit]")
                assert "status=failed" in page.url
                rows = page.locator("table.list tbody tr")
                assert rows.count() == 1
                assert failed[0].message_id in rows.inner_text()

                rows.locator("td.mono a").click()
                assert page.url.endswith(f"/console/transfers/{failed[0].pk}")
                body = page.locator("main").inner_text()
                assert failed[0].last_error_code == "OSO-E431"
                assert "OSO-E431" in body and "MandateMissing" in body  # the code explained
                assert page.locator("text=Retry this transfer").count() == 1
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()
    finally:
        server.stop()
    assert screenshot.stat().st_size > 10_000


def test_a_browser_applies_the_parents_reports_styles_under_the_csp(
    pair: GatewayPair, tmp_path: Path
) -> None:
    """The report's inline ``<style>`` was refused by the console's ``style-src 'self'``: the
    browser showed it unstyled (an administrator's walkthrough)."""
    from playwright.sync_api import sync_playwright

    _send(pair, seed=33)
    [delivered] = pair.sender_store.list_messages(statuses=[m.DELIVERED])
    store = pair.sender_store
    add_operator(store, ADMIN_NAME, "admin")
    app = console_app(tmp_path, store, port=0)
    server = start_console_in_thread(app.extensions["oso_console"].settings, app=app, port=0)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page()
                refused: list[str] = []
                page.on(
                    "console",
                    lambda message: (
                        refused.append(message.text)
                        if "Content Security Policy" in message.text
                        else None
                    ),
                )
                page.goto(server.url)
                page.fill("#name", ADMIN_NAME)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{server.url}transfers/{delivered.pk}")
                page.click("text=English")
                assert page.url.endswith(f"/transfers/{delivered.pk}/disclosure?lang=en")
                assert "Data shared (categories)" in page.locator("body").inner_text()
                # max-width:48em (16 px a em) and the heading cells' left alignment: styled
                assert page.locator("body").evaluate("b => getComputedStyle(b).maxWidth") == (
                    "768px"
                )
                assert page.locator("th").first.evaluate("t => getComputedStyle(t).textAlign") == (
                    "left"
                )
                assert refused == []
            finally:
                browser.close()
    finally:
        server.stop()
