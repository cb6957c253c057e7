"""Workspace pages through Django's test client (the stream view included)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def member_client(client, member):
    client.force_login(get_user_model().objects.get(username="mia"))
    return client


def _events(response) -> list[dict]:
    """The server-sent events of a streamed turn (an async stream, read as the ASGI server would)."""
    from asgiref.sync import async_to_sync

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    body = async_to_sync(read)().decode()
    return [json.loads(frame[6:]) for frame in body.split("\n\n") if frame.startswith("data: ")]


def test_the_model_picker_offers_only_chat_models_the_key_may_use(demo, member, member_client):
    from workspace import services

    services.settings_put(
        organization=demo.org,
        actor=demo.owner,
        enabled=True,
        allowed_models=["gpt-4o-mini", "claude-sonnet-4-6", "text-embedding-3-small"],
        retention_days=0,
    )
    from workspace.models import WorkspaceKey

    # Reading the page issues no key: the member opens the workspace with a POST.
    page = member_client.get(reverse("workspace:conversation-list"))
    assert page.status_code == 200 and "Open my workspace" in page.content.decode()
    assert not WorkspaceKey.objects.filter(user=member).exists()
    member_client.post(reverse("workspace:open"))
    assert WorkspaceKey.objects.filter(user=member).count() == 1
    page = member_client.get(reverse("workspace:conversation-list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<option value="gpt-4o-mini"' in html and '<option value="claude-sonnet-4-6"' in html
    assert "gpt-5.5" not in html  # not offered by the workspace settings
    assert "text-embedding-3-small" not in html  # not a chat model


def test_start_stream_and_see_a_turn_with_its_cost(demo, member, member_client):
    from workspace.models import Conversation

    response = member_client.post(
        reverse("workspace:conversation-list"), {"model": "gpt-4o-mini", "data_class": "internal"}
    )
    conversation = Conversation.objects.get(user=member)
    assert response.status_code == 302 and response.url == reverse(
        "workspace:conversation-detail", args=[conversation.pk]
    )

    streamed = member_client.post(reverse("workspace:conversation-turn", args=[conversation.pk]), {"content": "Hello"})
    assert streamed["Content-Type"] == "text/event-stream"
    events = _events(streamed)
    assert [e["type"] for e in events][:3] == ["asked", "start", "delta"]
    answer = next(e for e in events if e["type"] == "answer")
    assert events[-1]["type"] == "total" and events[-1]["cost"] == answer["cost"]

    page = member_client.get(reverse("workspace:conversation-detail", args=[conversation.pk])).content.decode()
    assert f"${answer['cost']}" in page
    assert answer["deployment"] in page


def test_model_markdown_never_reaches_the_page_as_raw_html():
    from workspace.markdown import markdown_html

    html = markdown_html('Hi <img src=x onerror="alert(1)"> **bold** [x](javascript:alert(1))\n\n<script>x</script>')
    assert "<img" not in html and "<script" not in html and "javascript:" not in html.replace("javascript:alert", "")
    assert "<strong>bold</strong>" in html


def test_other_members_conversations_are_not_found(demo, member, member_client):
    from workspace import services

    theirs = services.conversation_create(organization=demo.org, user=demo.owner, model="gpt-4o-mini")
    assert member_client.get(reverse("workspace:conversation-detail", args=[theirs.pk])).status_code == 404
    assert (
        member_client.post(reverse("workspace:conversation-turn", args=[theirs.pk]), {"content": "x"}).status_code
        == 404
    )
    assert member_client.post(reverse("workspace:conversation-delete", args=[theirs.pk])).status_code == 404


def test_list_search_rename_pin_and_delete_with_confirmation(demo, member, member_client):
    from workspace import services
    from workspace.models import Conversation

    first = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini", title="Tax plan")
    services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini", title="Holiday")

    found = member_client.get(reverse("workspace:conversation-list"), {"q": "tax"}).content.decode()
    assert "Tax plan" in found and "Holiday" not in found

    # The search answers the list alone for htmx (typed in the search box).
    partial = member_client.get(reverse("workspace:conversation-list"), {"q": "holi"}, HTTP_HX_REQUEST="true")
    assert "Holiday" in partial.content.decode() and "<h1>" not in partial.content.decode()

    # Renamed from the list, back to the list; a `next` off this site is not followed.
    listed = member_client.get(reverse("workspace:conversation-list")).content.decode()
    assert f'id="ws-title-{first.pk}"' in listed
    back = member_client.post(
        reverse("workspace:conversation-rename", args=[first.pk]),
        {"title": "Tax plan 2027", "next": reverse("workspace:conversation-list")},
    )
    assert back.url == reverse("workspace:conversation-list")
    away = member_client.post(
        reverse("workspace:conversation-rename", args=[first.pk]), {"title": "Tax plan 2027", "next": "https://x.test/"}
    )
    assert away.url == reverse("workspace:conversation-detail", args=[first.pk])
    member_client.post(reverse("workspace:conversation-pin", args=[first.pk]), {"pinned": "1"})
    first.refresh_from_db()
    assert first.title == "Tax plan 2027" and first.pinned

    confirm = member_client.get(reverse("workspace:conversation-delete", args=[first.pk]))
    assert b"Delete conversation" in confirm.content and Conversation.objects.filter(pk=first.pk).exists()
    member_client.post(reverse("workspace:conversation-delete", args=[first.pk]))
    assert not Conversation.objects.filter(pk=first.pk).exists()


def test_export_markdown_and_json(demo, member, member_client):
    from workspace import services

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini", title="Notes")
    md = member_client.get(reverse("workspace:conversation-export", args=[conversation.pk, "md"]))
    assert md.content.decode().startswith("# Notes")
    data = json.loads(
        member_client.get(reverse("workspace:conversation-export", args=[conversation.pk, "json"])).content
    )
    assert data["title"] == "Notes" and data["model"] == "gpt-4o-mini"
    assert member_client.get(reverse("workspace:conversation-export", args=[conversation.pk, "pdf"])).status_code == 404


def test_upload_is_queued_refused_when_off_and_the_knowledge_base_starts_a_conversation(demo, member, member_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from workspace import services
    from workspace.models import Conversation, Document, KnowledgeBase

    member_client.post(reverse("workspace:knowledge-list"), {"name": "Policies"})
    base = KnowledgeBase.objects.get(organization=demo.org, name="Policies")
    bad = SimpleUploadedFile("run.exe", b"MZ")
    page = member_client.post(reverse("workspace:knowledge-detail", args=[base.pk]), {"file": bad})
    assert page.status_code == 200 and "Upload a .txt, .md, .html or .pdf file" in page.content.decode()

    services.settings_put(
        organization=demo.org,
        actor=demo.owner,
        enabled=True,
        allowed_models=[],
        retention_days=0,
        uploads_allowed=False,
    )
    page = member_client.get(reverse("workspace:knowledge-detail", args=[base.pk])).content.decode()
    assert "Uploading documents is turned off" in page
    upload = SimpleUploadedFile("travel.md", b"# Travel\n\nTrains are booked through the travel desk.")
    page = member_client.post(reverse("workspace:knowledge-detail", args=[base.pk]), {"file": upload})
    assert "Uploading documents is turned off" in page.content.decode()
    assert not Document.objects.filter(knowledge_base=base).exists()

    member_client.post(
        reverse("workspace:conversation-list"),
        {"model": "gpt-4o-mini", "data_class": "internal", "knowledge_base": base.pk},
    )
    assert Conversation.objects.get(user=member).knowledge_base_id == base.pk


def test_admin_pages_personas_settings_and_lock_are_for_owners_and_admins(demo, member, member_client, client):
    from workspace import services
    from workspace.models import Persona

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    assert member_client.get(reverse("workspace:settings")).status_code == 403
    assert (
        member_client.post(reverse("workspace:conversation-lock", args=[conversation.pk]), {"locked": "1"}).status_code
        == 403
    )
    assert member_client.post(reverse("workspace:persona-list"), {"name": "Mine"}).status_code == 403
    assert not Persona.objects.exists()

    owner = client.__class__()
    owner.force_login(get_user_model().objects.get(username="owner"))
    response = owner.post(
        reverse("workspace:persona-list"),
        {
            "name": "Reviewer",
            "system_prompt": "Review code.",
            "default_model": "gpt-4o-mini",
            "allowed_models": "gpt-4o-mini, claude-sonnet-4-6",
        },
    )
    assert response.status_code == 302
    persona = Persona.objects.get(name="Reviewer")
    assert persona.allowed_models == ["claude-sonnet-4-6", "gpt-4o-mini"]
    assert "Reviewer" in member_client.get(reverse("workspace:persona-list")).content.decode()

    everyone = owner.get(reverse("workspace:conversation-list"), {"everyone": "1"}).content.decode()
    assert "mia" in everyone and "Lock model" in everyone
    member_only = member_client.get(reverse("workspace:conversation-list"), {"everyone": "1"}).content.decode()
    assert "Everyone&#x27;s conversations" not in member_only and "Lock model" not in member_only
    owner.post(reverse("workspace:conversation-lock", args=[conversation.pk]), {"locked": "1"})
    conversation.refresh_from_db()
    assert conversation.model_locked
    assert (
        'name="model" value="gpt-4o-mini"'
        in member_client.get(reverse("workspace:conversation-detail", args=[conversation.pk])).content.decode()
    )

    bad = owner.post(reverse("workspace:settings"), {"enabled": "on", "allowed_models": "", "retention_days": "-1"})
    assert bad.status_code == 200 and b"retention" in bad.content.lower()
    owner.post(reverse("workspace:settings"), {"allowed_models": "", "retention_days": "0"})  # switched off
    assert member_client.get(reverse("workspace:conversation-list")).status_code == 403


def test_memory_page_add_edit_and_forget_with_confirmation(demo, member, member_client):
    from workspace.models import MemoryFact

    member_client.post(reverse("workspace:memory"), {"text": "I prefer metric units"})
    fact = MemoryFact.objects.get(user=member)
    member_client.post(reverse("workspace:memory-edit", args=[fact.pk]), {"text": "I prefer imperial units"})
    fact.refresh_from_db()
    assert fact.text == "I prefer imperial units"
    assert b"Forget" in member_client.get(reverse("workspace:memory-delete", args=[fact.pk])).content
    member_client.post(reverse("workspace:memory-delete", args=[fact.pk]))
    assert not MemoryFact.objects.exists()
    empty = member_client.post(reverse("workspace:memory"), {"text": ""})
    assert empty.status_code == 200 and not MemoryFact.objects.exists()


def test_a_text_file_attached_to_a_turn_goes_with_the_question(demo, member, member_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from workspace import services
    from workspace.models import Message

    conversation = services.conversation_create(organization=demo.org, user=member, model="gpt-4o-mini")
    url = reverse("workspace:conversation-turn", args=[conversation.pk])
    notes = SimpleUploadedFile("notes.txt", b"Budget review on Friday.\nBring the Q3 figures.")
    events = _events(member_client.post(url, {"content": "Summarise this", "attachment": notes}))

    asked = events[0]
    assert asked["type"] == "asked"
    assert asked["content"].startswith("Summarise this\n\nAttached file notes.txt:\n\n````\nBudget review on Friday.")
    assert Message.objects.get(pk=asked["id"]).content == asked["content"]
    assert "answer" in [e["type"] for e in events]

    bad = SimpleUploadedFile("tool.exe", b"MZ")
    events = _events(member_client.post(url, {"content": "And this", "attachment": bad}))
    assert events == [
        {
            "type": "error",
            "content": "The attachment tool.exe was not added: Upload a .txt, .md, .html or .pdf file "
            "(or .csv, .json, .log).",
        }
    ]
    assert Message.objects.filter(conversation=conversation, kind="user").count() == 1
