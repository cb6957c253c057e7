"""The Integrity page in Chromium: verify now with live progress, and a proof lookup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.audit.conftest import ledger_transactional  # noqa: F401 - fixture
from tests.browser.conftest import CHROMIUM

if not Path(CHROMIUM).exists():
    _reason = f"{CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium)."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser


def test_verify_now_shows_progress_then_the_result_and_a_proof_is_found(
    page: Page,
    demo,
    gateway_server,
    ledger_transactional,  # noqa: F811
    tmp_path,
):
    from audit.models import AuditEvent, Verification
    from audit.services import ledger_seal, verification_run

    ledger_seal()
    base = gateway_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page.locator("#integrity-tile")).to_be_visible()
    page.click("#integrity-tile")
    expect(page.get_by_role("heading", level=1)).to_have_text("Integrity")
    expect(page.locator("#log-size")).not_to_have_text("0")

    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#verification")).to_contain_text("Running")
    # The worker's part (the same service the Celery task runs); the page polls for it.
    verification_run(verification_id=Verification.objects.get(log__organization_id=demo.org.id).id)
    expect(page.locator("#verification")).to_contain_text("Passed", timeout=10_000)
    page.screenshot(path=str(tmp_path / "integrity.png"), full_page=True)

    event = AuditEvent.objects.filter(organization_id=demo.org.id).order_by("id").first()
    page.fill("#id_request_id", f"event:{event.id}")
    page.get_by_role("button", name="Show proof").click()
    expect(page.locator("main")).to_contain_text("proof verifies")
