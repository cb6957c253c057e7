"""The workspace in Chromium: a member signs in, chats with a streamed answer, switches
model in one click and sees each turn's model, tokens and cost."""

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


def test_member_chats_with_streaming_switches_model_and_sees_the_cost(page: Page, demo, gateway_server):
    from console import services as console_services
    from workspace.models import Message

    member = console_services.user_create(username="mia", email="mia@example.com", password="pw-Member-123")
    console_services.membership_set(organization=demo.org, user=member, role="member", actor=demo.owner)
    base = gateway_server.url

    page.goto(f"{base}/login/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "pw-Member-123")
    page.click("button[type=submit]")
    page.click("nav >> text=Workspace")
    expect(page.locator("h1")).to_have_text("Workspace")

    page.select_option("#new-model", "gpt-4o-mini")
    page.click("button:has-text('Start')")
    expect(page.locator("#ws-composer")).to_be_visible()

    # Count the updates of the answer's text (one per delta, then one for the rendered Markdown).
    page.evaluate(
        """() => {
            window.wsUpdates = 0;
            new MutationObserver((records) => {
                for (const r of records) {
                    const node = r.target.closest ? r.target : r.target.parentElement;
                    if (node && node.closest(".ws-answer .ws-body")) window.wsUpdates += 1;
                }
            }).observe(document.getElementById("ws-thread"), {childList: true, subtree: true, characterData: true});
        }"""
    )
    page.fill("#ws-content", "Tell me a short story")
    page.click("#ws-send")
    # While the answer streams, its text grows in a bubble marked as streaming.
    expect(page.locator(".ws-answer .ws-body").first).not_to_be_empty()
    first = page.locator(".ws-answer").first
    expect(first.locator(".ws-meta")).to_contain_text("gpt-4o-mini")
    expect(first.locator(".ws-meta")).to_contain_text("tokens")
    stored = Message.objects.get(kind="answer", conversation__user=member)
    expect(first.locator(".ws-cost")).to_have_text(f"${stored.cost.normalize():f}")
    expect(page.locator("#ws-total-cost")).to_have_text(f"${stored.cost.normalize():f}")
    assert page.evaluate("window.wsUpdates") > 2  # the answer grew delta by delta

    # One click switches the model; the thread shows the switch and the next turn's model.
    page.select_option("#ws-model", "claude-sonnet-4-6")
    page.fill("#ws-content", "And another one")
    page.click("#ws-send")
    expect(page.locator(".ws-switch")).to_have_text("Switched from gpt-4o-mini to claude-sonnet-4-6")
    second = page.locator(".ws-answer").nth(1)
    expect(second.locator(".ws-meta")).to_contain_text("claude-sonnet-4-6")
    expect(second.locator(".ws-cost")).to_have_text(
        f"${Message.objects.filter(kind='answer', model='claude-sonnet-4-6').get().cost.normalize():f}"
    )

    # After a reload the thread is the same, rendered from the database.
    page.reload()
    expect(page.locator(".ws-switch")).to_have_count(1)
    expect(page.locator(".ws-answer")).to_have_count(2)
