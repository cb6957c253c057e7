"""Workspace writes: keys, conversations, turns, memory, settings (personas: `workspace.personas`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.models import DataClass, Membership, Organization
from console.services import api_key_create
from workspace.conf import workspace_conf
from workspace.models import (
    Conversation,
    KnowledgeBase,
    MemoryFact,
    Message,
    MessageKind,
    Persona,
    WorkspaceKey,
    WorkspaceSettings,
)
from workspace.selectors import (
    memory_prompt,
    memory_suggestion,
    model_allowlist,
    personas_for,
    workspace_settings,
)

DEFAULT_TITLE = "New conversation"
REMEMBER = re.compile(r"^\s*remember that\s+(?P<fact>.+?)\s*$", re.IGNORECASE | re.DOTALL)


# ---- keys -----------------------------------------------------------------------------------


def workspace_key_ensure(*, organization: Organization, user: AbstractBaseUser) -> WorkspaceKey:
    """The member's workspace key in this organization, issued on first use (or after a revoke)."""
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise PermissionDenied("You are not a member of this organization.")
    with transaction.atomic():
        existing = (
            WorkspaceKey.objects.select_for_update()
            .select_related("api_key")
            .filter(organization=organization, user=user)
            .first()
        )
        if existing is not None and existing.api_key.revoked_at is None:
            return existing
        team = user.gatehouse_teams.filter(organization=organization).order_by("id").first()
        issued = api_key_create(
            organization=organization,
            name=f"workspace: {user.get_username()}",
            user=user,
            team=team,
            tags=[workspace_conf().tag],
            app_name="workspace",
            actor=user,
        )
        if existing is not None:
            existing.api_key = issued.key
            existing.save(update_fields=["api_key"])
            return existing
        return WorkspaceKey.objects.create(organization=organization, user=user, api_key=issued.key)


# ---- conversations --------------------------------------------------------------------------


def _check_model(organization: Organization, persona: Persona | None, model: str) -> None:
    allowed = model_allowlist(organization=organization, persona=persona)
    if allowed is not None and model not in allowed:
        raise ValidationError({"model": f"The model {model} is not offered in this workspace."})


def conversation_create(
    *,
    organization: Organization,
    user: AbstractBaseUser,
    model: str = "",
    persona: Persona | None = None,
    data_class: str = DataClass.INTERNAL,
    title: str = "",
    knowledge_base: KnowledgeBase | None = None,
) -> Conversation:
    if not workspace_settings(organization=organization).enabled:
        raise PermissionDenied("The workspace is turned off in this organization.")
    if persona is not None and not personas_for(organization=organization, user=user).filter(pk=persona.pk).exists():
        raise ValidationError({"persona": "This persona is not shared with you."})
    if persona is not None:
        knowledge_base = knowledge_base or persona.knowledge_base
        if persona.data_class and data_class == DataClass.INTERNAL:
            data_class = persona.data_class
    if knowledge_base is not None and knowledge_base.organization_id != organization.id:
        raise ValidationError({"knowledge_base": "The knowledge base belongs to another organization."})
    if data_class not in DataClass.values:
        raise ValidationError({"data_class": f"Unknown data class {data_class!r}."})
    model = (model or (persona.default_model if persona else "")).strip()
    if not model:
        raise ValidationError({"model": "Choose a model."})
    _check_model(organization, persona, model)
    return Conversation.objects.create(
        organization=organization,
        user=user,
        model=model,
        persona=persona,
        knowledge_base=knowledge_base,
        data_class=data_class,
        title=(title.strip() or DEFAULT_TITLE)[:200],
    )


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title:
        raise ValidationError({"title": "A conversation needs a title."})
    conversation.title = title[:200]
    conversation.save(update_fields=["title"])
    return conversation


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    conversation.pinned = pinned
    conversation.save(update_fields=["pinned"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversation_lock(*, conversation: Conversation, locked: bool, actor: AbstractBaseUser) -> Conversation:
    """Only owners and admins fix a conversation's model."""
    membership = Membership.objects.filter(organization_id=conversation.organization_id, user=actor).first()
    if membership is None or not membership.can_manage:
        raise PermissionDenied("Only owners and admins lock a conversation's model.")
    conversation.model_locked = locked
    conversation.save(update_fields=["model_locked"])
    return conversation


def conversations_expire(*, now=None) -> int:
    """Delete conversations older than their organization's retention (a periodic job)."""
    now = now or timezone.now()
    removed = 0
    for setting in WorkspaceSettings.objects.filter(retention_days__gt=0):
        cutoff = now - timedelta(days=setting.retention_days)
        removed += (
            Conversation.objects.filter(organization_id=setting.organization_id, updated_at__lt=cutoff)
            .delete()[1]
            .get("workspace.Conversation", 0)
        )
    return removed


# ---- turns ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnPlan:
    """What one turn sends through the pipeline, decided from the database."""

    conversation_id: int
    model: str
    previous_model: str
    data_class: str
    key_id: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    refusal: Message | None = None  # refused before any call (a locked model, a model not offered)
    knowledge_base_id: int | None = None
    embedding_model: str = ""
    query: str = ""  # what the knowledge base is searched for
    citations: list[dict[str, Any]] = field(default_factory=list)
    asked_id: int | None = None  # the stored question
    remembered: str = ""  # a fact saved because the message asked for it
    suggestion: str = ""  # a fact the member may accept; never saved without them

    @property
    def switching(self) -> bool:
        return self.model != self.previous_model


@dataclass(slots=True)
class TurnOutcome:
    status: int
    text: str = ""
    model: str = ""
    deployment: str = ""
    request_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    error_code: str = ""
    error_message: str = ""
    stopped: bool = False
    ttft_ms: int | None = None


REASONS = {
    "budget_exceeded": "Your budget for this period is used up, so the model was not called.",
    "rate_limit_exceeded": "Too many requests in a short time; wait a moment and try again.",
    "pii_blocked": "The message contains personal data that the organization's guard policy does not allow to leave.",
    "content_policy_violation": "The message (or the answer) breaks the organization's content policy.",
    "prompt_injection": "The message looks like an attempt to override the model's instructions.",
    "model_not_allowed": "Your workspace key may not use this model.",
    "model_not_found": "This model does not exist or is not deployed for your organization.",
}


def refusal_reason(*, code: str, message: str, model: str, data_class: str) -> str:
    """A refused turn in plain words, with the gateway's own message after it."""
    if code == "no_compliant_model":
        plain = f"{model} is not approved for {data_class} data in the organization's compliance matrix."
    else:
        plain = REASONS.get(code, "The gateway refused the request.")
    return f"{plain} ({message})" if message and message not in plain else plain


def _history(conversation: Conversation) -> list[dict[str, str]]:
    """Earlier messages to send: answers and the questions they answer, and the new question.
    A question that was refused (blocked by the guard, over budget, a refused switch) is left
    out, so one refusal does not make every later turn fail the same way."""
    limit = workspace_conf().history_messages
    rows = list(
        conversation.messages.filter(kind__in=[MessageKind.USER, MessageKind.ANSWER, MessageKind.REFUSAL])
        .order_by("-created_at", "-id")
        .values_list("kind", "content")[: limit * 2]
    )
    rows.reverse()
    sent: list[dict[str, str]] = []
    for index, (kind, text) in enumerate(rows):
        if kind == MessageKind.ANSWER:
            sent.append({"role": "assistant", "content": text})
        elif kind == MessageKind.USER:
            following = rows[index + 1][0] if index + 1 < len(rows) else None
            if following in (None, MessageKind.ANSWER):
                sent.append({"role": "user", "content": text})
    return sent[-limit:]


def turn_prepare(
    *,
    conversation_id: int,
    user_id: int,
    content: str = "",
    model: str = "",
    regenerate: bool = False,
    edit_of: int | None = None,
    attachment: tuple[str, str] | None = None,
) -> TurnPlan:
    """Check and store the user's side of a turn and build the request (blocking; run in a thread).

    `edit_of` (one of the conversation's own messages) resends an edited question: that
    message and everything after it leave the thread first (their cost stays counted).
    `attachment` (file name, its text) is added to the question as a quoted block."""
    user = get_user_model().objects.get(pk=user_id)
    conversation = Conversation.objects.select_related("organization", "persona", "knowledge_base").get(
        pk=conversation_id
    )
    if conversation.user_id != user.pk:
        raise PermissionDenied("This conversation belongs to someone else.")
    organization = conversation.organization
    if not workspace_settings(organization=organization).enabled:
        raise PermissionDenied("The workspace is turned off in this organization.")
    model = (model or conversation.model).strip()
    plan = TurnPlan(
        conversation_id=conversation.pk,
        model=model,
        previous_model=conversation.model,
        data_class=conversation.data_class,
    )
    conf = workspace_conf()
    if regenerate:
        last_user = conversation.messages.filter(kind=MessageKind.USER).order_by("-created_at", "-id").first()
        if last_user is None:
            raise ValidationError({"content": "There is nothing to regenerate yet."})
        plan.query = last_user.content
        conversation.messages.filter(created_at__gte=last_user.created_at, id__gt=last_user.id).exclude(
            kind=MessageKind.USER
        ).delete()
    else:
        content = content.strip()
        if attachment is not None:
            name, text = attachment
            content = f"{content}\n\nAttached file {name}:\n\n````\n{text.strip()}\n````".strip()
        if not content:
            raise ValidationError({"content": "Write a message first."})
        if len(content) > conf.max_message_chars:
            raise ValidationError({"content": f"A message holds at most {conf.max_message_chars} characters."})
        if edit_of is not None:
            edited = conversation.messages.filter(pk=edit_of, kind=MessageKind.USER).first()
            if edited is None:
                raise ValidationError({"content": "The message to edit is not in this conversation."})
            conversation.messages.filter(id__gte=edited.pk).delete()
        plan.asked_id = Message.objects.create(conversation=conversation, kind=MessageKind.USER, content=content).pk
        plan.query = content
        remembered = REMEMBER.match(content)
        if remembered:
            plan.remembered = memory_add(organization=organization, user=user, text=remembered.group("fact")).text
        else:
            plan.suggestion = memory_suggestion(organization=organization, user=user, text=content)
        if conversation.title == DEFAULT_TITLE:
            conversation.title = content.splitlines()[0][:60]
            conversation.save(update_fields=["title"])
    if plan.switching:
        refused = ""
        if conversation.model_locked:
            refused = f"An administrator locked this conversation to {conversation.model}."
        else:
            try:
                _check_model(organization, conversation.persona, model)
            except ValidationError:
                refused = f"{model} is not offered in this workspace."
        if refused:
            plan.refusal = Message.objects.create(
                conversation=conversation,
                kind=MessageKind.REFUSAL,
                model=model,
                content=f"Switch to {model} refused: {refused}",
                error_code="switch_refused",
            )
            return plan
    plan.key_id = workspace_key_ensure(organization=organization, user=user).api_key_id
    if conversation.knowledge_base_id:
        plan.knowledge_base_id = conversation.knowledge_base_id
        plan.embedding_model = conversation.knowledge_base.embedding_model
    messages: list[dict[str, str]] = []
    persona = conversation.persona
    if persona is not None and persona.system_prompt:
        messages.append({"role": "system", "content": persona.system_prompt})
    memory = memory_prompt(organization=organization, user=user, budget_tokens=conf.memory_tokens)
    if memory:
        messages.append({"role": "system", "content": memory})
    messages += _history(conversation)
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": user.get_username(),
        "metadata": {"workspace_conversation": str(conversation.pk)},
    }
    if persona is not None and persona.temperature is not None:
        body["temperature"] = float(persona.temperature)
    plan.body = body
    plan.headers = {
        "x-data-classification": conversation.data_class,
        "x-gatehouse-tags": conf.tag,
        "x-gatehouse-conversation": str(conversation.pk),
    }
    return plan


def turn_record(*, plan: TurnPlan, outcome: TurnOutcome) -> list[Message]:
    """Store the answer (or the refusal) of a turn and the conversation's totals (blocking)."""
    conversation = Conversation.objects.get(pk=plan.conversation_id)
    created: list[Message] = []
    now = timezone.now()
    with transaction.atomic():
        if outcome.status >= 400:
            reason = refusal_reason(
                code=outcome.error_code, message=outcome.error_message, model=plan.model, data_class=plan.data_class
            )
            if plan.switching:
                reason = f"Switch to {plan.model} refused: {reason}"
            created.append(
                Message.objects.create(
                    conversation=conversation,
                    kind=MessageKind.REFUSAL,
                    content=reason,
                    model=plan.model,
                    request_id=outcome.request_id,
                    error_code=outcome.error_code or "refused",
                    cost=outcome.cost,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                )
            )
        else:
            if plan.switching:
                created.append(
                    Message.objects.create(
                        conversation=conversation,
                        kind=MessageKind.SWITCH,
                        model=plan.model,
                        content=f"Switched from {plan.previous_model} to {plan.model}",
                    )
                )
                conversation.model = plan.model
            created.append(
                Message.objects.create(
                    conversation=conversation,
                    kind=MessageKind.ANSWER,
                    content=outcome.text,
                    model=outcome.model or plan.model,
                    deployment=outcome.deployment,
                    request_id=outcome.request_id,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                    cost=outcome.cost,
                    stopped=outcome.stopped,
                    ttft_ms=outcome.ttft_ms,
                    citations=plan.citations,
                )
            )
        Conversation.objects.filter(pk=conversation.pk).update(
            model=conversation.model,
            updated_at=now,
            total_cost=F("total_cost") + outcome.cost,
            total_tokens=F("total_tokens") + outcome.prompt_tokens + outcome.completion_tokens,
        )
    return created


# ---- memory ---------------------------------------------------------------------------------


def _fact_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise ValidationError({"text": "Write the fact to remember."})
    if len(text) > 1000:
        raise ValidationError({"text": "A fact holds at most 1000 characters."})
    return text


def memory_add(*, organization: Organization, user: AbstractBaseUser, text: str) -> MemoryFact:
    return MemoryFact.objects.create(organization=organization, user=user, text=_fact_text(text))


def memory_update(*, fact: MemoryFact, text: str) -> MemoryFact:
    fact.text = _fact_text(text)
    fact.save(update_fields=["text"])
    return fact


def memory_delete(*, fact: MemoryFact) -> None:
    fact.delete()


def _manager(organization: Organization, actor: AbstractBaseUser) -> None:
    membership = Membership.objects.filter(organization=organization, user=actor).first()
    if membership is None or not membership.can_manage:
        raise PermissionDenied("Only owners and admins manage personas and workspace settings.")


# ---- settings -------------------------------------------------------------------------------


def settings_put(
    *,
    organization: Organization,
    actor: AbstractBaseUser,
    enabled: bool,
    allowed_models: list[str],
    retention_days: int,
    uploads_allowed: bool | None = None,
    private_personas: bool | None = None,
) -> WorkspaceSettings:
    """Set the organization's workspace switches (None leaves a switch as it is)."""
    _manager(organization, actor)
    if retention_days < 0:
        raise ValidationError({"retention_days": "Retention is 0 (forever) or more days."})
    setting, _ = WorkspaceSettings.objects.get_or_create(organization=organization)
    setting.enabled = enabled
    setting.allowed_models = sorted({m.strip() for m in allowed_models if m.strip()})
    setting.retention_days = retention_days
    if uploads_allowed is not None:
        setting.uploads_allowed = uploads_allowed
    if private_personas is not None:
        setting.private_personas = private_personas
    setting.updated_at = timezone.now()
    setting.save()
    return setting
