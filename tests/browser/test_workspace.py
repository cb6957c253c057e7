"""The workspace in Chromium: a member signs in, opens the workspace, chats with a streamed
answer, switches model in one click and sees each turn's model, tokens, cost and TTFT; uses a
persona, uploads a document (indexed by the real Celery worker, progress polled) and gets an
answer that cites it; a switch the compliance matrix forbids and an exhausted budget say why."""

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

    # The workspace key is issued by an explicit action, not by reading the page.
    from workspace.models import WorkspaceKey

    assert not WorkspaceKey.objects.filter(user=member).exists()
    page.click("#ws-open-button")
    expect(page.locator("#new-model")).to_be_visible()
    assert WorkspaceKey.objects.filter(user=member).count() == 1

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
    expect(first.locator(".ws-ttft")).to_have_text(f"TTFT {stored.ttft_ms} ms")
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


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-Member-123")
    page.click("button[type=submit]")
    page.goto(f"{base}/workspace/")
    page.click("#ws-open-button")
    expect(page.locator("#new-model")).to_be_visible()


HANDBOOK = """# Handbook

Expense reports are due on the fifth working day of each month.

Parking permits for the Lyon office are requested from facilities with the car's plate.

The security team rotates the VPN certificates every ninety days.
"""


def test_a_persona_and_an_uploaded_document_give_an_answer_that_cites_it(
    page: Page, demo, gateway_server, celery_worker_process, tmp_path
):
    from console import services as console_services
    from workspace import personas
    from workspace.models import Document, Message

    member = console_services.user_create(username="ines", email="ines@example.com", password="pw-Member-123")
    console_services.membership_set(organization=demo.org, user=member, role="member", actor=demo.owner)
    personas.persona_save(
        organization=demo.org,
        actor=demo.owner,
        name="Office helper",
        description="Answers questions about the office",
        system_prompt="Answer in one short paragraph.",
        default_model="claude-sonnet-4-6",
    )
    base = gateway_server.url
    _sign_in(page, base, "ines")

    # A knowledge base and a document, indexed in the background while the page polls.
    page.click(".ws-tabs >> text=Knowledge")
    page.fill("#id_name", "Handbook")
    page.click("button:has-text('Create')")
    expect(page.locator("h1")).to_have_text("Handbook")
    handbook = tmp_path / "handbook.md"
    handbook.write_text(HANDBOOK)
    page.set_input_files("#id_file", str(handbook))
    page.click("button:has-text('Upload and index')")
    expect(page.locator(".messages")).to_contain_text("handbook.md is being indexed")
    expect(page.locator("#ws-documents .ws-doc-status")).to_have_text("Ready", timeout=60_000)
    assert Document.objects.get(name="handbook.md").status == "ready"

    # A conversation with the persona (its default model) and the knowledge base.
    page.click(".ws-tabs >> text=Conversations")
    page.select_option("#id_persona", label="Office helper")
    page.select_option("#id_knowledge_base", label="Handbook")
    page.click("button:has-text('Start')")
    expect(page.locator("#ws-model")).to_have_value("claude-sonnet-4-6")
    expect(page.locator(".page-header")).to_contain_text("Persona Office helper")
    page.fill("#ws-content", "How do I get a parking permit for the Lyon office?")
    page.click("#ws-send")
    answer = page.locator(".ws-answer").first
    expect(answer.locator(".ws-citations a").first).to_contain_text("handbook.md, part")
    expect(answer.locator(".ws-meta")).to_contain_text("claude-sonnet-4-6")
    stored = Message.objects.get(kind="answer", conversation__user=member)
    expect(answer.locator(".ws-cost")).to_have_text(f"${stored.cost.normalize():f}")

    # The citation links to the passage it quotes.
    answer.locator(".ws-citations a").first.click()
    expect(page.locator(".ws-passage-cited")).to_contain_text("Parking permits for the Lyon office")


def test_a_refused_switch_and_an_exhausted_budget_say_why(page: Page, demo, gateway_server):
    from budgets.services import budget_create
    from console import services as console_services
    from routing import services as routing_services
    from tests.budgets.helpers import budget_sync
    from tests.conftest import gateway_sync

    member = console_services.user_create(username="lou", email="lou@example.com", password="pw-Member-123")
    console_services.membership_set(organization=demo.org, user=member, role="member", actor=demo.owner)
    base = gateway_server.url
    _sign_in(page, base, "lou")

    page.select_option("#new-model", "gpt-4o-mini")
    page.select_option("#id_data_class", "confidential")
    page.click("button:has-text('Start')")
    page.fill("#ws-content", "Summarise the contract")
    page.click("#ws-send")
    expect(page.locator(".ws-answer")).to_have_count(1)

    # Meanwhile an admin forbids gpt-5.5 for confidential data: the switch is refused.
    routing_services.matrix_set(
        organization=demo.org, actor=demo.owner, subject="gpt-5.5", data_class="confidential", approved=False
    )
    gateway_sync()
    page.select_option("#ws-model", "gpt-5.5")
    page.fill("#ws-content", "Now with the bigger model")
    page.click("#ws-send")
    refusal = page.locator(".ws-refusal").first
    expect(refusal).to_contain_text(
        "Switch to gpt-5.5 refused: gpt-5.5 is not approved for confidential data in the organization's "
        "compliance matrix."
    )
    expect(page.locator("#ws-model")).to_have_value("gpt-4o-mini")  # the conversation kept its model

    # With the member's budget used up, the next turn is refused in plain words.
    budget_create(organization=demo.org, scope="user", scope_id=member.pk, amount="0.000001", actor=demo.owner)
    budget_sync()
    page.fill("#ws-content", "One more question")
    page.click("#ws-send")
    expect(page.locator(".ws-refusal").nth(1)).to_contain_text(
        "Your budget for this period is used up, so the model was not called."
    )
    page.reload()
    expect(page.locator(".ws-refusal")).to_have_count(2)
    # From now on the picker shows gpt-5.5 disabled, with the reason.
    expect(page.locator("#ws-model option[value='gpt-5.5']")).to_be_disabled()
    expect(page.locator("#ws-model option[value='gpt-5.5']")).to_have_text(
        "gpt-5.5 (not approved for confidential data)"
    )
