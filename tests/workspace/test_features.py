"""Compare view, personas shared with teams or kept private, edit and resend, memory
suggestions that are never saved silently, time to first token."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from tests.workspace.conftest import turn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def member_client(client, member):
    client.force_login(get_user_model().objects.get(username="mia"))
    return client


def test_compare_sends_one_prompt_to_several_models_with_cost_and_latency(demo, member, member_client):
    from budgets.models import UsageRecord
    from routing import services as routing_services
    from workspace.models import WorkspaceKey

    routing_services.matrix_set(
        organization=demo.org, actor=demo.owner, subject="gpt-5.5", data_class="confidential", approved=False
    )
    member_client.post(reverse("workspace:open"))
    page = member_client.post(
        reverse("workspace:compare"),
        {
            "prompt": "Name three rivers",
            "models": ["gpt-4o-mini", "claude-sonnet-4-6", "gpt-5.5"],
            "data_class": "confidential",
        },
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="card ws-side"') == 3
    assert html.count('class="ws-latency"') == 3
    assert "gpt-5.5 is not approved for confidential data" in html  # refused in plain words
    key_id = WorkspaceKey.objects.get(user=member).api_key_id
    from tests.conftest import gateway_sync

    gateway_sync()
    records = UsageRecord.objects.filter(key_id=key_id, endpoint="chat")
    answered = {r.model_requested: r for r in records if r.status_code == 200}
    assert set(answered) >= {"gpt-4o-mini", "claude-sonnet-4-6"}
    for record in answered.values():
        assert f"${record.cost.normalize():f}" in html

    bad = member_client.post(reverse("workspace:compare"), {"prompt": "x", "models": ["gpt-4o-mini"]})
    assert bad.status_code == 400 and "Choose two or three different models" in bad.content.decode()


def test_personas_are_shared_with_the_organization_or_teams_or_kept_private(demo, member):
    from console import services as console_services
    from workspace import personas, selectors, services

    outsider = console_services.user_create(username="noa", email="noa@example.com", password="pw-Member-123")
    console_services.membership_set(organization=demo.org, user=outsider, role="member", actor=demo.owner)
    everyone = personas.persona_save(organization=demo.org, actor=demo.owner, name="Everyone")
    research = personas.persona_save(organization=demo.org, actor=demo.owner, name="Research only", teams=[demo.team])

    visible = lambda user: sorted(p.name for p in selectors.personas_for(organization=demo.org, user=user))  # noqa: E731
    assert visible(member) == ["Everyone", "Research only"]  # mia is in Research
    assert visible(outsider) == ["Everyone"]
    with pytest.raises(ValidationError):
        services.conversation_create(organization=demo.org, user=outsider, model="gpt-4o-mini", persona=research)

    # Members create private personas only when the organization allows it.
    with pytest.raises(PermissionDenied):
        personas.persona_save(organization=demo.org, actor=member, name="Mine")
    services.settings_put(
        organization=demo.org,
        actor=demo.owner,
        enabled=True,
        allowed_models=[],
        retention_days=0,
        private_personas=True,
    )
    mine = personas.persona_save(organization=demo.org, actor=member, name="Mine", teams=[demo.team])
    assert mine.owner_id == member.pk and not mine.teams.exists()  # private: never shared
    assert visible(member) == ["Everyone", "Mine", "Research only"] and "Mine" not in visible(outsider)
    with pytest.raises(PermissionDenied):
        personas.persona_save(organization=demo.org, actor=outsider, name="Mine 2", persona=mine)
    with pytest.raises(PermissionDenied):
        personas.persona_save(organization=demo.org, actor=member, name="Everyone", persona=everyone)

    # A persona's knowledge base and data class start its conversations.
    from workspace import knowledge

    base = knowledge.knowledge_base_create(organization=demo.org, actor=demo.owner, name="Legal")
    legal = personas.persona_save(
        organization=demo.org,
        actor=demo.owner,
        name="Legal",
        default_model="gpt-4o-mini",
        knowledge_base=base,
        data_class="confidential",
    )
    conversation = services.conversation_create(organization=demo.org, user=member, persona=legal)
    assert conversation.knowledge_base_id == base.pk and conversation.data_class == "confidential"


def test_edit_and_resend_replaces_the_question_and_what_followed(demo, member):
    from workspace import services
    from workspace.models import Message

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    first = turn(conversation_id=conversation.pk, user_id=member.pk, content="Tell me about cats")
    turn(conversation_id=conversation.pk, user_id=member.pk, content="And dogs?")
    asked = first[0]["id"]
    spent = conversation.__class__.objects.get(pk=conversation.pk).total_cost

    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="Tell me about owls", edit_of=asked)

    assert "answer" in [e["type"] for e in events]
    kept = list(Message.objects.filter(conversation=conversation).values_list("kind", "content"))
    assert [k for k, _ in kept] == ["user", "answer"] and kept[0][1] == "Tell me about owls"
    conversation.refresh_from_db()
    assert conversation.total_cost > spent  # what was spent stays counted
    with pytest.raises(ValidationError):
        turn(conversation_id=conversation.pk, user_id=member.pk, content="x", edit_of=999999)


def test_a_fact_is_suggested_never_saved_silently_and_answers_carry_ttft(demo, member):
    from workspace import services
    from workspace.models import MemoryFact, Message

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    events = turn(
        conversation_id=conversation.pk, user_id=member.pk, content="My role is data steward. Summarise GDPR."
    )
    suggestion = next(e for e in events if e["type"] == "suggestion")
    assert suggestion["content"] == "My role is data steward"
    assert not MemoryFact.objects.exists()  # offered, not saved

    events = turn(conversation_id=conversation.pk, user_id=member.pk, content="remember that I work in Lyon")
    assert next(e for e in events if e["type"] == "remembered")["content"] == "I work in Lyon"
    assert list(MemoryFact.objects.values_list("text", flat=True)) == ["I work in Lyon"]

    answer = Message.objects.filter(conversation=conversation, kind="answer").first()
    assert answer.ttft_ms is not None and answer.ttft_ms >= 0


def test_accepting_a_suggested_fact_saves_it_and_returns_to_the_conversation(demo, member, member_client):
    from workspace import services
    from workspace.models import MemoryFact

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    back = reverse("workspace:conversation-detail", args=[conversation.pk])
    page = member_client.get(back).content.decode()
    assert 'id="ws-suggestion"' in page and "hidden" in page  # shown only when a turn suggests

    accepted = member_client.post(reverse("workspace:memory"), {"text": "My role is data steward", "next": back})
    assert accepted.status_code == 302 and accepted.url == back
    assert list(MemoryFact.objects.filter(user=member).values_list("text", flat=True)) == ["My role is data steward"]
    elsewhere = member_client.post(reverse("workspace:memory"), {"text": "I prefer tea", "next": "https://x.test/"})
    assert elsewhere.url == reverse("workspace:memory")
