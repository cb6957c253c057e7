"""Layout and menus in the real Chromium at 1024 and 1440 px: tables fit or wrap, the
sidebar collapses on narrow screens, each role sees its own menu and overview."""

from __future__ import annotations

import os
from decimal import Decimal
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

WIDTHS = (1024, 1440)
PAGES = (
    "/",
    "/usage/",
    "/budgets/",
    "/keys/",
    "/teams/",
    "/users/",
    "/api-tokens/",
    "/registry/models/",
    "/registry/providers/",
    "/registry/deployments/",
    "/routing/",
    "/routing/matrix/",
    "/routing/health/",
)
PASSWORD = "pw-Owner-123"

# How far a table may stick out of its card before it counts as cut off (rounding).
SLACK_PX = 2

OVERFLOW_JS = """
() => {
  const out = [];
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    const table = wrap.querySelector('table');
    if (!table) continue;
    if (table.scrollWidth > wrap.clientWidth + SLACK) {
      out.push({table: table.scrollWidth, wrap: wrap.clientWidth, head: table.querySelector('thead')?.innerText});
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + SLACK) out.push({page: doc.scrollWidth, viewport: doc.clientWidth});
  return out;
}
""".replace("SLACK", str(SLACK_PX))


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


@pytest.fixture
def world(demo, gateway_server):
    """The demo organization with finance and member users, real traffic and a budget."""
    from budgets import services as budget_services
    from console import services as console_services
    from tests.conftest import usage_wait

    for username, role in (("finance", "finance"), ("member", "member")):
        user = console_services.user_create(username=username, password=PASSWORD)
        console_services.membership_set(organization=demo.org, user=user, role=role)
        if role == "member":
            console_services.team_member_add(team=demo.team, user=user)
    for model in ("gpt-4o-mini", "claude-sonnet-4-6", "gemini-3.1-pro"):
        response = httpx.post(
            f"{demo.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {demo.secret}", "x-sim-latency-scale": "0"},
            json={"model": model, "messages": [{"role": "user", "content": "hello there"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        usage_wait(response.headers["x-request-id"])
    budget_services.budget_create(
        organization=demo.org, scope="team", scope_id=demo.team.id, amount=Decimal("250"), name="Research monthly"
    )
    budget_services.budget_create(
        organization=demo.org, scope="organization", scope_id=demo.org.id, amount=Decimal("1000"), name="Acme total"
    )
    return demo


@pytest.mark.parametrize("width", WIDTHS)
def test_tables_fit_their_cards_at_1024_and_1440(page: Page, world, gateway_server, width):
    page.set_viewport_size({"width": width, "height": 900})
    base = gateway_server.url
    _sign_in(page, base, "owner")
    for path in PAGES:
        page.goto(f"{base}{path}")
        assert page.evaluate(OVERFLOW_JS) == [], f"{path} at {width}px"
    # The usage table's cost and latency columns are on screen without scrolling.
    page.goto(f"{base}/usage/")
    for header in ("Cost", "Latency"):
        cell = page.locator("table thead th", has_text=header).first
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, f"{header} at {width}px"


def test_the_sidebar_collapses_on_narrow_screens_and_opens_on_demand(page: Page, world, gateway_server):
    base = gateway_server.url
    page.set_viewport_size({"width": 1440, "height": 900})
    _sign_in(page, base, "owner")
    expect(page.locator("#sidenav")).to_be_visible()
    expect(page.locator("[data-nav-toggle]")).to_be_hidden()
    page.set_viewport_size({"width": 1024, "height": 800})
    expect(page.locator("#sidenav")).to_be_hidden()
    toggle = page.locator("[data-nav-toggle]")
    expect(toggle).to_be_visible()
    toggle.click()
    expect(page.locator("#sidenav")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.locator("#sidenav").get_by_role("link", name="Usage").click()
    expect(page).to_have_url(f"{base}/usage/")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("username", "present", "absent", "overview"),
    [
        ("owner", ["Keys", "Users", "Providers", "Routing", "Budgets", "API tokens"], [], "Create key"),
        (
            "finance",
            ["Usage", "Budgets", "Model prices", "API tokens"],
            ["Keys", "Users", "Providers", "Routing"],
            "Spend",
        ),
        (
            "member",
            ["Your keys", "Your usage", "Models", "API tokens"],
            ["Users", "Providers", "Routing", "Budgets"],
            "Create key",
        ),
    ],
)
def test_each_role_sees_its_own_menu_and_every_link_opens(
    page: Page, world, gateway_server, width, username, present, absent, overview
):
    page.set_viewport_size({"width": width, "height": 900})
    base = gateway_server.url
    _sign_in(page, base, username)
    nav = page.locator("#sidenav")
    if width < 1100:
        page.locator("[data-nav-toggle]").click()
    names = [text.strip() for text in nav.locator("a.nav-link").all_inner_texts()]
    for label in present:
        assert label in names, f"{username}: {label} missing from {names}"
    for label in absent:
        assert label not in names, f"{username}: {label} should not be in {names}"
    expect(page.locator("main")).to_contain_text(overview)
    if username == "finance":
        expect(page.locator("main")).not_to_contain_text("issue, scope and revoke")
        expect(page.locator("main")).not_to_contain_text("Create key")
    hrefs = nav.locator("a.nav-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    for href in hrefs:
        response = page.request.get(f"{base}{href}")
        assert response.status == 200, f"{username}: {href} answered {response.status}"


def test_the_favicon_is_served_and_the_overview_snippet_is_not_clipped(page: Page, world, gateway_server):
    base = gateway_server.url
    page.set_viewport_size({"width": 1024, "height": 900})
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    _sign_in(page, base, "owner")
    assert not failed, failed
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(f"{base}{icon}").status == 200
    snippet = page.locator("pre.snippet").first
    clipped = snippet.evaluate("el => el.scrollWidth > el.clientWidth + 2")
    assert not clipped
