"""Guardrails in Chromium: test a prompt (an htmx swap), then save a policy layer and
see the next test use it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM

if not Path(CHROMIUM).exists():
    _reason = f"{CHROMIUM} is missing; install Debian's chromium to run the browser tests."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


def test_test_a_prompt_then_change_the_policy(page: Page, demo, gateway_server):
    base = gateway_server.url
    _sign_in(page, base)
    page.goto(f"{base}/guardrails/test/")
    page.fill("#id_text", "Write to jane.doe@example.com about card 4111 1111 1111 1111")
    page.click("button:has-text('Check')")
    expect(page.locator("#upstream")).to_have_text("Write to <EMAIL_1> about card <CREDIT_CARD_1>")
    expect(page.locator("#result")).to_contain_text("jane.doe@example.com")  # the placeholder table

    page.goto(f"{base}/guardrails/")
    page.fill("#id_document", "pii:\n  '*': {CREDIT_CARD: block}\n")
    page.click("button:has-text('Save layer')")
    expect(page.locator("body")).to_contain_text("Guard policy saved.")

    page.goto(f"{base}/guardrails/test/")
    page.fill("#id_text", "card 4111 1111 1111 1111")
    page.click("button:has-text('Check')")
    expect(page.locator("#result")).to_contain_text("pii_blocked")
