"""FinOps in Chromium, the newer parts: reasoning tokens in unit economics, the explorer's
series as a table, the Overview's chargeback download, the savings baseline's basis."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import CHROMIUM

if not Path(CHROMIUM).exists():
    _reason = f"{CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium)."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.test_finops_pages import _rolled_up, _sign_in  # noqa: E402

pytestmark = pytest.mark.browser


def test_finance_sees_reasoning_series_table_and_downloads_the_chargeback(page: Page, demo, gateway_server):
    base = gateway_server.url
    for model in ("gpt-5.5", "gpt-4o-mini"):
        response = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {demo.secret}", "x-sim-latency-scale": "0"},
            json={"model": model, "messages": [{"role": "user", "content": "Plan the quarter"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    reasoning = response.json()["usage"].get("completion_tokens_details", {}).get("reasoning_tokens", 0)
    assert reasoning == 0  # gpt-4o-mini does not think
    _rolled_up(2)
    _sign_in(page, base)

    page.goto(f"{base}/finops/unit-economics/?period=7d")
    table = page.get_by_test_id("table-model")
    expect(table).to_contain_text("Reasoning tokens")
    expect(page.get_by_test_id("stat-reasoning")).not_to_have_text("0")

    page.goto(f"{base}/finops/spend/?period=7d&group=model")
    page.locator("summary", has_text="Chart data as a table").first.click()
    expect(page.get_by_test_id("table-series")).to_contain_text("gpt-5.5")

    page.goto(f"{base}/finops/")
    link = page.get_by_test_id("chargeback-0")
    expect(link).to_be_visible()
    download = page.request.get(base + link.get_attribute("href"))
    assert download.ok and download.headers["content-type"].startswith("text/csv")
    lines = download.text().splitlines()
    assert lines[0].startswith("Team,Model,Provider") and lines[-1].startswith("TOTAL")

    page.goto(f"{base}/finops/savings/")
    expect(page.locator("main")).to_contain_text("live routing policy")
