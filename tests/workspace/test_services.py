"""Workspace services: locks, personas, memory, settings, retention (real pipeline where a turn runs)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from tests.workspace.conftest import turn

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_locked_conversation_refuses_a_switch_without_calling_a_model(demo, member):
    from budgets.models import UsageRecord
    from workspace import services

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    with pytest.raises(PermissionDenied):
        services.conversation_lock(conversation=conversation, locked=True, actor=member)
    services.conversation_lock(conversation=conversation, locked=True, actor=demo.owner)
    before = UsageRecord.objects.count()

    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Hi", model="claude-sonnet-4-6")

    assert [e["type"] for e in events] == ["asked", "refusal", "total"]
    assert events[1]["content"] == (
        "Switch to claude-sonnet-4-6 refused: An administrator locked this conversation to gpt-4o-mini."
    )
    assert UsageRecord.objects.count() == before
    conversation.refresh_from_db()
    assert conversation.model == "gpt-4o-mini"


def test_a_persona_gives_the_system_prompt_default_model_and_limits_the_models(demo, member):
    from workspace import personas, services
    from workspace.models import Message

    with pytest.raises(PermissionDenied):
        personas.persona_save(organization=demo.org, actor=member, name="Editor")
    with pytest.raises(ValidationError):
        personas.persona_save(
            organization=demo.org, actor=demo.owner, name="Bad", default_model="gpt-5.5", allowed_models=["gpt-4o-mini"]
        )
    persona = personas.persona_save(
        organization=demo.org,
        actor=demo.owner,
        name="Editor",
        system_prompt="You edit text tersely.",
        default_model="claude-sonnet-4-6",
        allowed_models=["claude-sonnet-4-6", "gpt-4o-mini"],
        temperature=Decimal("0.2"),
    )
    conversation = services.conversation_create(organization=demo.org, user=member, persona=persona)
    assert conversation.model == "claude-sonnet-4-6"
    with pytest.raises(ValidationError):
        services.conversation_create(organization=demo.org, user=member, persona=persona, model="gpt-5.5")

    plan = services.turn_prepare(conversation_id=conversation.pk, user_id=member.pk, content="Fix: teh cat")
    assert plan.body["messages"][0] == {"role": "system", "content": "You edit text tersely."}
    assert plan.body["temperature"] == 0.2
    assert plan.headers["x-gatehouse-tags"] == "workspace"

    refused = turn(conversation_id=conversation.pk, user_id=member.pk, content="x", model="gpt-5.5")
    assert refused[1]["content"] == "Switch to gpt-5.5 refused: gpt-5.5 is not offered in this workspace."
    assert Message.objects.filter(conversation=conversation, kind="refusal").count() == 1


def test_remember_that_saves_a_fact_sent_with_later_turns_within_the_token_budget(demo, member, settings):
    from workspace import selectors, services

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    services.turn_prepare(conversation_id=conversation.pk, user_id=member.pk, content="Remember that I work in Lyon")
    facts = list(selectors.memory_of(organization=demo.org, user=member))
    assert [f.text for f in facts] == ["I work in Lyon"]

    plan = services.turn_prepare(conversation_id=conversation.pk, user_id=member.pk, content="Where do I work?")
    assert {"role": "system", "content": "Facts the user asked you to remember:\n- I work in Lyon"} in plan.body[
        "messages"
    ]

    services.memory_update(fact=facts[0], text="I work in Paris")
    services.memory_add(organization=demo.org, user=member, text="x" * 1000)  # newest; alone exceeds a tiny budget
    settings.GATEHOUSE = {**settings.GATEHOUSE, "WORKSPACE": {"MEMORY_TOKENS": 50}}
    plan = services.turn_prepare(conversation_id=conversation.pk, user_id=member.pk, content="And now?")
    assert not [m for m in plan.body["messages"] if m["role"] == "system"]  # nothing fits: nothing sent

    services.memory_delete(fact=facts[0])
    assert [f.text for f in selectors.memory_of(organization=demo.org, user=member)] == ["x" * 1000]
    with pytest.raises(ValidationError):
        services.memory_add(organization=demo.org, user=member, text="   ")


def test_regenerate_replaces_the_last_answer(demo, member):
    from workspace import services
    from workspace.models import Message

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    turn(conversation_id=conversation.pk, user_id=member.pk, content="Hello")
    first = Message.objects.get(conversation=conversation, kind="answer")
    events = turn(conversation_id=conversation.pk, user_id=member.pk, regenerate=True)
    answers = Message.objects.filter(conversation=conversation, kind="answer")
    assert answers.count() == 1 and answers[0].pk != first.pk
    assert next(e for e in events if e["type"] == "answer")["id"] == answers[0].pk
    assert Message.objects.filter(conversation=conversation, kind="user").count() == 1


def test_settings_turn_the_workspace_off_and_retention_deletes_old_conversations(demo, member):
    from workspace import services
    from workspace.models import Conversation

    old = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=40))
    fresh = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    with pytest.raises(PermissionDenied):
        services.settings_put(organization=demo.org, actor=member, enabled=False, allowed_models=[], retention_days=0)
    services.settings_put(organization=demo.org, actor=demo.owner, enabled=False, allowed_models=[], retention_days=30)

    with pytest.raises(PermissionDenied):
        services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    assert services.conversations_expire() == 1
    assert list(Conversation.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_the_workspace_key_is_issued_once_and_reissued_after_a_revoke(demo, member):
    from console.services import api_key_revoke
    from workspace import services

    first = services.workspace_key_ensure(organization=demo.org, user=member)
    assert services.workspace_key_ensure(organization=demo.org, user=member).api_key_id == first.api_key_id
    assert first.api_key.user_id == member.pk and first.api_key.team_id == demo.team.pk
    api_key_revoke(key=first.api_key, actor=demo.owner)
    again = services.workspace_key_ensure(organization=demo.org, user=member)
    assert again.pk == first.pk and again.api_key_id != first.api_key_id
