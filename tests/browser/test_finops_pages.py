"""The FinOps pages in Chromium: real gateway traffic, rolled up, read by a signed-in owner —
charts drawn, table views, filters in the URL, CSV, the cost model form, an outcome posted."""

from __future__ import annotations

import os
import re
import time
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

pytestmark = pytest.mark.browser


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


def _traffic(base: str, secret: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        response = httpx.post(
            f"{base}/v1/chat/completions",
            headers={
                "Authorization": f"Bearer {secret}",
                "x-sim-latency-scale": "0",
                "x-gatehouse-workflow": "triage",
            },
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hello {i}"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-request-id"])
    return ids


def _rolled_up(expected: int) -> None:
    from budgets.models import UsageRecord
    from budgets.rollups import usage_rollup

    deadline = time.monotonic() + 10
    while UsageRecord.objects.count() < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert UsageRecord.objects.count() >= expected
    usage_rollup()


def test_finance_pages_show_real_traffic_with_charts_tables_filters_and_csv(page: Page, demo, gateway_server):
    base = gateway_server.url
    ids = _traffic(base, demo.secret, 3)
    _rolled_up(3)
    outcome = httpx.post(
        f"{base}/api/v1/outcomes",
        headers={"Authorization": f"Bearer {demo.secret}"},
        json={"request_id": ids[0], "name": "ticket_resolved", "value": "4.00"},
        timeout=10,
    )
    assert outcome.status_code == 201, outcome.text
    _sign_in(page, base)

    page.get_by_role("link", name="FinOps").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("FinOps overview")
    expect(page.get_by_test_id("overview-chart").locator(".plot-container")).to_be_visible()
    expect(page.get_by_test_id("forecast-method")).to_contain_text("weekday")
    page.locator("summary", has_text="Chart data as a table").first.click()
    expect(page.get_by_test_id("table-daily")).to_be_visible()

    page.get_by_role("link", name="Spend explorer").click()
    expect(page.get_by_test_id("explorer-chart").locator(".plot-container")).to_be_visible()
    expect(page.get_by_test_id("table-groups")).to_contain_text("gpt-4o-mini")
    page.select_option("#f-group", "workflow")
    expect(page).to_have_url(re.compile(r"group=workflow"))
    expect(page.get_by_test_id("table-groups")).to_contain_text("triage")
    page.fill("#f-model", "no-such-model")
    page.press("#f-model", "Enter")
    expect(page.get_by_test_id("table-groups")).to_contain_text("Nothing in this period")
    csv_href = page.get_by_test_id("csv-groups").get_attribute("href")
    download = page.request.get(f"{base}/finops/spend/{csv_href}")
    assert download.ok and download.headers["content-type"].startswith("text/csv")
    assert download.text().splitlines()[0].startswith("Workflow,Requests")

    page.goto(f"{base}/finops/spend/?group=model&sort=-requests")
    expect(page.get_by_test_id("table-groups")).to_contain_text("▼")

    page.get_by_role("link", name="Unit economics").click()
    expect(page.get_by_test_id("unit-chart").locator(".plot-container")).to_be_visible()
    expect(page.get_by_test_id("table-model")).to_contain_text("TC/1M")

    page.get_by_role("link", name="Performance").click()
    expect(page.get_by_test_id("table-performance")).to_contain_text("gpt-4o-mini")
    expect(page.get_by_test_id("ttft-chart").locator(".plot-container")).to_be_visible()

    page.get_by_role("link", name="Outcomes & CPSI").click()
    expect(page.get_by_test_id("table-cpsi")).to_contain_text("ticket_resolved (1)")

    page.get_by_role("link", name="Routing savings").click()
    expect(page.get_by_test_id("table-tiers")).to_be_visible()

    page.get_by_role("link", name="On-prem break-even").click()
    expect(page.get_by_test_id("table-breakeven")).to_contain_text("gpt-4o-mini")
    page.fill("#id_gpus", "4")
    page.fill("#id_utilization", "250")
    page.get_by_role("button", name="Save cost model").click()
    expect(page.locator("main")).to_contain_text("between 1 and 100")
    page.fill("#id_utilization", "55")
    page.get_by_role("button", name="Save cost model").click()
    expect(page.locator("#id_gpus")).to_have_value("4")
