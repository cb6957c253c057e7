"""Turns through the real pipeline (simulator providers of the `demo` organization)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.workspace.conftest import turn, usage_record

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_turn_streams_an_answer_and_records_usage_tagged_workspace_with_the_members_key(demo, member):
    from workspace import services
    from workspace.models import Message, WorkspaceKey

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Say hello in two words")

    deltas = [e["text"] for e in events if e["type"] == "delta"]
    answer = next(e for e in events if e["type"] == "answer")
    assert len(deltas) > 1  # token by token
    assert answer["content"] == "".join(deltas)
    assert answer["model"] == "gpt-4o-mini"
    assert answer["deployment"].startswith("gpt-4o-mini@")
    assert answer["completion_tokens"] > 0

    stored = Message.objects.get(pk=answer["id"])
    record = usage_record(stored.request_id)
    assert record is not None
    key = WorkspaceKey.objects.get(organization=demo.org, user=member).api_key
    assert key.name == "workspace: mia"
    assert record.key_id == key.pk
    assert "workspace" in record.tags
    assert record.cost == stored.cost and stored.cost > Decimal(0)
    conversation.refresh_from_db()
    assert conversation.total_cost == stored.cost
    assert conversation.title == "Say hello in two words"


def test_a_switch_the_compliance_matrix_forbids_is_refused_with_the_reason(demo, member):
    from routing import services as routing_services
    from workspace import services
    from workspace.models import MessageKind

    routing_services.matrix_set(
        organization=demo.org, actor=demo.owner, subject="gpt-5.5", data_class="confidential", approved=False
    )
    conversation = services.conversation_create(
        organization=demo.org, user=member, model="gpt-4o-mini", data_class="confidential"
    )
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Hi", model="gpt-5.5")

    refusal = next(e for e in events if e["type"] == MessageKind.REFUSAL)
    assert refusal["error_code"] == "no_compliant_model"
    assert refusal["content"].startswith("Switch to gpt-5.5 refused: gpt-5.5 is not approved for confidential data")
    conversation.refresh_from_db()
    assert conversation.model == "gpt-4o-mini"  # the switch did not happen

    # An allowed switch goes through and is shown in the thread.
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Hi again", model="claude-sonnet-4-6")
    kinds = [e["type"] for e in events]
    assert "switch" in kinds and "answer" in kinds
    conversation.refresh_from_db()
    assert conversation.model == "claude-sonnet-4-6"


def test_an_exhausted_budget_says_why(demo, member):
    from budgets.services import budget_create
    from tests.budgets.helpers import budget_sync
    from workspace import services

    budget_create(organization=demo.org, scope="user", scope_id=member.pk, amount="0.000001", actor=demo.owner)
    budget_sync()
    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-5.5")
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Write a long essay")

    refusal = next(e for e in events if e["type"] == "refusal")
    assert refusal["error_code"] == "budget_exceeded"
    assert refusal["content"].startswith("Your budget for this period is used up")
    assert not [e for e in events if e["type"] == "answer"]


def test_a_guard_block_says_why_and_nothing_is_answered(demo, member):
    from guardrails import services as guard_services
    from workspace import services
    from workspace.models import Message

    guard_services.policy_set(
        organization=demo.org, document={"pii": {"*": {"CREDIT_CARD": "block"}}}, actor=demo.owner
    )
    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="My card is 4111 1111 1111 1111")

    refusal = next(e for e in events if e["type"] == "refusal")
    assert refusal["error_code"] == "pii_blocked"
    assert refusal["content"].startswith("The message contains personal data that the organization's guard policy")
    assert not Message.objects.filter(conversation=conversation, kind="answer").exists()
    assert usage_record(Message.objects.get(pk=refusal["id"]).request_id).error_code == "pii_blocked"


def test_stopping_mid_stream_keeps_the_partial_answer_and_settles_the_request(demo, member):
    from workspace import services
    from workspace.models import Message
    from workspace.turns import turn_events, with_gateway

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")

    async def stop_after_first_delta(gateway):
        events = turn_events(gateway, conversation_id=conversation.pk, user_id=member.pk, content="Tell a long story")
        seen = []
        async for event in events:
            seen.append(event)
            if event["type"] == "delta":
                break
        await events.aclose()  # what the page's Stop button causes (the reader goes away)
        return seen

    seen = with_gateway(None, stop_after_first_delta)

    answer = Message.objects.get(conversation=conversation, kind="answer")
    assert answer.stopped
    assert answer.content == seen[-1]["text"]
    record = usage_record(answer.request_id)
    assert record is not None and record.status_code == 499


def test_a_refused_question_is_not_sent_again_with_later_turns(demo, member):
    from guardrails import services as guard_services
    from workspace import services

    guard_services.policy_set(
        organization=demo.org, document={"pii": {"*": {"CREDIT_CARD": "block"}}}, actor=demo.owner
    )
    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    turn(conversation_id=conversation.pk, user_id=member.pk, content="My card is 4111 1111 1111 1111")

    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="What is the capital of France?")

    assert [e["type"] for e in events if e["type"] in ("answer", "refusal")] == ["answer"]
    plan = services.turn_prepare(conversation_id=conversation.pk, user_id=member.pk, content="Thanks")
    users = [m["content"] for m in plan.body["messages"] if m["role"] == "user"]
    assert users == ["What is the capital of France?", "Thanks"]
