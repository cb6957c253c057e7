"""The console end to end in Chromium: sign in, issue a key, call the gateway
with it, find the request in the usage log, revoke the key."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import CHROMIUM

if not Path(CHROMIUM).exists():
    _reason = (
        f"{CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium) to run the browser tests."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


def _chat(base: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}", "x-sim-latency-scale": "0"},
        json=CHAT,
        timeout=10,
    )


def test_login_shows_the_organization(page: Page, demo, gateway_server):
    base = gateway_server.url
    page.goto(f"{base}/keys/")
    expect(page).to_have_url(f"{base}/login/?next=/keys/")
    _sign_in(page, base)
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme")
    expect(page.locator(".sidenav")).to_contain_text("Usage")


def test_key_issued_in_the_console_calls_the_gateway_until_revoked(page: Page, demo, gateway_server):
    base = gateway_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    _sign_in(page, base)

    # Issue a key; the secret is on the page once.
    page.click("text=Create key")
    expect(page).to_have_url(f"{base}/keys/new/")
    page.fill("#id_name", "browser key")
    page.select_option("#id_allowed_models", ["gpt-4o-mini"])
    page.fill("#id_tags", "e2e")
    page.locator("main").get_by_role("button", name="Create key").click()
    secret_box = page.get_by_test_id("key-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.inner_text().strip()
    assert secret.startswith("sk-gh-")
    expect(page.locator(".secret-panel")).to_contain_text("only time")
    page.click("button[data-copy-target=key-secret]")
    expect(page.locator("button[data-copy-target=key-secret]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # The key works against the gateway.
    response = _chat(base, secret)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    assert request_id

    # The request shows up in the usage log once the batch writer has flushed it.
    link = page.locator(f'a[href="/usage/{request_id}/"]')
    deadline = time.monotonic() + 5
    while True:
        page.goto(f"{base}/usage/")
        if link.count() or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    expect(link).to_be_visible()
    expect(page.get_by_test_id("usage-chart").locator(".plot-container")).to_be_visible()

    # Filtering swaps the table in place and puts the filter in the URL.
    page.fill("#f-model", "gpt-4o-mini")
    page.press("#f-model", "Enter")
    expect(page).to_have_url(f"{base}/usage/?model=gpt-4o-mini&key=&status=&since=&until=&workflow=&tag=")
    expect(link).to_be_visible()
    page.fill("#f-model", "no-such-model")
    page.press("#f-model", "Enter")
    expect(page.locator("#usage-results")).to_contain_text("No requests match")
    page.goto(f"{base}/usage/")

    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(request_id)
    expect(page.locator("main")).to_contain_text("gpt-4o-mini")
    expect(page.locator("main")).to_contain_text("browser key")

    # Revoke through the confirmation step.
    page.goto(f"{base}/keys/")
    page.get_by_role("link", name="browser key").click()
    page.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("Revoke key browser key?")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(page.locator("h1 .badge")).to_have_text("revoked")

    status, deadline = None, time.monotonic() + 2
    while time.monotonic() < deadline:
        status = _chat(base, secret).status_code
        if status == 401:
            break
        time.sleep(0.1)
    assert status == 401


def test_revoking_from_the_key_list_swaps_the_row(page: Page, demo, gateway_server):
    base = gateway_server.url
    _sign_in(page, base)
    page.goto(f"{base}/keys/")
    row = page.locator(f"#key-{demo.key.pk}")
    expect(row.locator(".badge-active")).to_have_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#key-{demo.key.pk} .badge-revoked")).to_have_text("revoked")
    expect(page).to_have_url(f"{base}/keys/")
