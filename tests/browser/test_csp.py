"""The console in Chromium under its Content-Security-Policy: the main pages load, htmx and
the plotly charts work, and the browser reports no policy violation and no console error."""

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

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/keys/",
    "/teams/",
    "/users/",
    "/api-tokens/",
    "/usage/",
    "/budgets/",
    "/finops/",
    "/finops/spend/",
    "/registry/models/",
    "/registry/providers/",
    "/routing/rules/",
    "/guardrails/reviews/",
    "/routing/",
    "/guardrails/",
    "/workspace/",
    "/evals/",
    "/integrity/",
    "/api/docs/",
]
# Recorded in the page before any of its scripts run (Playwright's init scripts are not
# subject to the page's policy).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


def test_main_pages_run_under_the_policy_without_violations(page: Page, demo, gateway_server) -> None:
    base = gateway_server.url
    response = httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {demo.secret}", "x-sim-latency-scale": "0"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
        timeout=10,
    )
    assert response.status_code == 200
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(WATCH)

    page.goto(f"{base}/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-Owner-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")

    seen = {}
    for path in PAGES:
        answer = page.goto(f"{base}{path}")
        assert answer is not None and answer.status < 400, path
        assert "script-src 'self'" in (answer.headers.get("content-security-policy") or ""), path
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__violations")
    assert all(not violations for violations in seen.values()), seen
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors

    # The usage chart is drawn from its JSON by the static loader, and htmx still swaps.
    page.goto(f"{base}/usage/")
    expect(page.locator("#usage-chart .main-svg").first).to_be_attached()
    page.goto(f"{base}/api/docs/")
    expect(page.locator(".swagger-ui")).to_be_visible()
    assert page.evaluate("window.__violations") == []
    assert not errors, errors

    # The watch works and the policy holds: an injected inline script is refused and reported.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.head.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None
    assert any(v.startswith("script-src") for v in page.evaluate("window.__violations"))
