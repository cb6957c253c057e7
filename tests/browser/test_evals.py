"""Evaluations in Chromium: an admin adds the starter suites, runs one across models in
a real Celery worker, watches the progress and reads the leaderboard."""

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


@pytest.fixture
def worker(gateway_server, request):
    from django.conf import settings

    os.environ["GATEHOUSE_SIMULATOR_URL"] = settings.GATEHOUSE["SIMULATOR_URL"]
    return request.getfixturevalue("celery_worker_process")


def test_admin_runs_a_starter_suite_and_sees_the_leaderboard(page: Page, demo, gateway_server, worker):
    base = gateway_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")

    page.click("nav >> text=Evaluations")
    expect(page.locator("h1")).to_have_text("Evaluations")
    page.click("[data-testid=starter-install]")
    expect(page.locator("body")).to_contain_text("Starter suites ready")
    page.click("[data-testid=suite-table] >> text=arithmetic")
    for model in ("gpt-4o-mini", "claude-sonnet-4-6", "gpt-5.5"):
        page.check(f"[data-testid=run-form] input[value='{model}']")
    page.click("[data-testid=run-form] button:has-text('Run')")
    expect(page.locator("body")).to_contain_text("The run is queued.")
    expect(page.locator("[data-testid=run-progress]")).to_have_attribute("data-status", "done", timeout=90_000)
    expect(page.locator("[data-testid=run-scores] tbody tr")).to_have_count(3)

    page.click("h1 >> text=arithmetic")
    board = page.locator("[data-testid=leaderboard]")
    for model in ("gpt-4o-mini", "claude-sonnet-4-6", "gpt-5.5"):
        expect(board.locator(f"tr[data-model='{model}']")).to_have_count(1)
    expect(board).to_contain_text("on the front")
    expect(page.locator("[data-testid=quality-cost-chart] .main-svg").first).to_be_visible()
