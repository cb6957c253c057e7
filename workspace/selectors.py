"""Workspace reads."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from console.models import Organization
from workspace.models import Conversation, MemoryFact, MessageKind, Persona, WorkspaceSettings

PAGE_SIZE = 25


def workspace_settings(*, organization: Organization) -> WorkspaceSettings:
    """The organization's settings, or the defaults (unsaved) when it has none."""
    found = WorkspaceSettings.objects.filter(organization=organization).first()
    return found or WorkspaceSettings(organization=organization)


def model_allowlist(*, organization: Organization, persona: Persona | None = None) -> set[str] | None:
    """The models the workspace offers beyond what the key allows; None means no extra limit."""
    allowed: set[str] | None = None
    setting = workspace_settings(organization=organization)
    if setting.allowed_models:
        allowed = set(setting.allowed_models)
    if persona is not None and persona.allowed_models:
        allowed = set(persona.allowed_models) if allowed is None else allowed & set(persona.allowed_models)
    return allowed


def conversations_of(
    *, organization: Organization, user: AbstractBaseUser | None, search: str = ""
) -> QuerySet[Conversation]:
    """A member's conversations, or (`user=None`, for owners and admins) the organization's."""
    rows = Conversation.objects.filter(organization=organization).select_related("user")
    if user is not None:
        rows = rows.filter(user=user)
    search = search.strip()
    if search:
        rows = rows.filter(Q(title__icontains=search) | Q(messages__content__icontains=search)).distinct()
    return rows.order_by("-pinned", "-updated_at", "-id")


def conversation_page(*, organization: Organization, user: AbstractBaseUser, search: str = "", page: Any = 1) -> Page:
    return Paginator(conversations_of(organization=organization, user=user, search=search), PAGE_SIZE).get_page(page)


def memory_of(*, organization: Organization, user: AbstractBaseUser) -> QuerySet[MemoryFact]:
    return MemoryFact.objects.filter(organization=organization, user=user).order_by("-created_at", "-id")


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def memory_prompt(*, organization: Organization, user: AbstractBaseUser, budget_tokens: int) -> str:
    """The newest facts that fit in `budget_tokens`, as one system message ('' when none)."""
    header = "Facts the user asked you to remember:"
    used = estimate_tokens(header)
    lines: list[str] = []
    for text in memory_of(organization=organization, user=user).values_list("text", flat=True)[:200]:
        cost = estimate_tokens(text) + 1
        if used + cost > budget_tokens:
            break
        used += cost
        lines.append(f"- {text}")
    return "\n".join([header, *lines]) if lines else ""


def conversation_export(*, conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "model": conversation.model,
        "persona": conversation.persona.name if conversation.persona_id else None,
        "data_class": conversation.data_class,
        "created_at": conversation.created_at.isoformat(),
        "total_cost": str(conversation.total_cost),
        "total_tokens": conversation.total_tokens,
        "messages": [
            {
                "kind": m.kind,
                "content": m.content,
                "model": m.model,
                "deployment": m.deployment,
                "request_id": m.request_id,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "cost": str(m.cost),
                "error_code": m.error_code,
                "created_at": m.created_at.isoformat(),
            }
            for m in conversation.messages.all()
        ],
    }


def conversation_export_json(*, conversation: Conversation) -> str:
    return json.dumps(conversation_export(conversation=conversation), indent=2)


def conversation_export_markdown(*, conversation: Conversation) -> str:
    lines = [f"# {conversation.title}", "", f"Model: {conversation.model} · Data class: {conversation.data_class}", ""]
    for m in conversation.messages.all():
        if m.kind == MessageKind.USER:
            lines += ["## You", "", m.content, ""]
        elif m.kind == MessageKind.ANSWER:
            lines += [f"## {m.model}", "", m.content, "", f"_{m.tokens} tokens · ${m.cost.normalize():f}_", ""]
        else:
            lines += [f"> {m.content}", ""]
    lines.append(f"Total: {conversation.total_tokens} tokens · ${conversation.total_cost.normalize():f}")
    return "\n".join(lines) + "\n"
