"""Workspace reads."""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from console.models import Organization
from workspace.models import Conversation, MemoryFact, MessageKind, Persona, WorkspaceKey, WorkspaceSettings

PAGE_SIZE = 25


def workspace_settings(*, organization: Organization) -> WorkspaceSettings:
    """The organization's settings, or the defaults (unsaved) when it has none."""
    found = WorkspaceSettings.objects.filter(organization=organization).first()
    return found or WorkspaceSettings(organization=organization)


def workspace_key_of(*, organization: Organization, user: AbstractBaseUser) -> WorkspaceKey | None:
    """The member's live workspace key, without issuing one (pages read; only a POST issues)."""
    return (
        WorkspaceKey.objects.filter(organization=organization, user=user, api_key__revoked_at__isnull=True)
        .select_related("api_key")
        .first()
    )


def personas_for(*, organization: Organization, user: AbstractBaseUser) -> QuerySet[Persona]:
    """The personas a member may use: shared with the organization (no teams), shared with
    one of their teams, or their own private ones."""
    shared = Q(owner__isnull=True) & (Q(teams__isnull=True) | Q(teams__members=user))
    return Persona.objects.filter(organization=organization).filter(shared | Q(owner=user)).distinct().order_by("name")


def personas_managed(*, organization: Organization, user: AbstractBaseUser) -> QuerySet[Persona]:
    """What owners and admins see on the personas page: every shared persona and their own."""
    return (
        Persona.objects.filter(organization=organization)
        .filter(Q(owner__isnull=True) | Q(owner=user))
        .prefetch_related("teams")
        .order_by("name")
    )


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


SUGGEST = re.compile(
    r"\b(?P<fact>(?:my (?:name|role|job|team|title|company|time ?zone|language) is"
    r"|i (?:prefer|work (?:at|on|in|as)|am based in|live in)|call me)\s+[^.!?\n]{2,120})",
    re.IGNORECASE,
)


def memory_suggestion(*, organization: Organization, user: AbstractBaseUser, text: str) -> str:
    """A fact about the member their message states ("my role is …", "I prefer …"), offered
    to remember; '' when there is none or it is remembered already. Never saved here."""
    found = SUGGEST.search(text)
    if found is None:
        return ""
    fact = " ".join(found.group("fact").split())
    fact = fact[0].upper() + fact[1:]
    if memory_of(organization=organization, user=user).filter(text__iexact=fact).exists():
        return ""
    return fact


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
