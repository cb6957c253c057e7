"""Personas: shared with the organization or with teams by owners and admins, or private
to the member who made them (when the organization allows it)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from console.models import DataClass, Membership, Organization, Team
from workspace.models import KnowledgeBase, Persona
from workspace.selectors import workspace_settings


def persona_save(
    *,
    organization: Organization,
    actor: AbstractBaseUser,
    name: str,
    system_prompt: str = "",
    description: str = "",
    default_model: str = "",
    allowed_models: list[str] | None = None,
    temperature: Decimal | None = None,
    knowledge_base: KnowledgeBase | None = None,
    data_class: str = "",
    teams: list[Team] | None = None,
    private: bool = False,
    persona: Persona | None = None,
) -> Persona:
    """Create a persona, or update `persona`. Owners and admins share one with the
    organization (no teams) or with some teams, or keep one private; members keep private
    ones only, when the organization allows it."""
    membership = Membership.objects.filter(organization=organization, user=actor).first()
    if membership is None:
        raise PermissionDenied("You are not a member of this organization.")
    manager = membership.can_manage
    if persona is not None:
        if persona.organization_id != organization.id:
            raise PermissionDenied("The persona belongs to another organization.")
        if persona.owner_id is not None and persona.owner_id != actor.pk:
            raise PermissionDenied("A private persona is edited only by the member who made it.")
        if persona.owner_id is None and not manager:
            raise PermissionDenied("Only owners and admins edit shared personas.")
        private = persona.owner_id is not None
    elif not manager:
        if not workspace_settings(organization=organization).private_personas:
            raise PermissionDenied("Only owners and admins create personas in this organization.")
        private = True
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A persona needs a name."})
    allowed = sorted({m.strip() for m in allowed_models or [] if m.strip()})
    default_model = default_model.strip()
    if default_model and allowed and default_model not in allowed:
        raise ValidationError({"default_model": "The default model must be one of the allowed models."})
    if temperature is not None and not Decimal(0) <= temperature <= Decimal(2):
        raise ValidationError({"temperature": "Temperature lies between 0 and 2."})
    if data_class and data_class not in DataClass.values:
        raise ValidationError({"data_class": f"Unknown data class {data_class!r}."})
    if knowledge_base is not None and knowledge_base.organization_id != organization.id:
        raise ValidationError({"knowledge_base": "The knowledge base belongs to another organization."})
    teams = list(teams or []) if not private else []
    if any(team.organization_id != organization.id for team in teams):
        raise ValidationError({"teams": "A team belongs to another organization."})
    clash = Persona.objects.filter(organization=organization, name=name)
    if persona is not None:
        clash = clash.exclude(pk=persona.pk)
    if clash.exists():
        raise ValidationError({"name": f"A persona named {name} exists already."})
    persona = persona or Persona(organization=organization, owner=actor if private else None)
    persona.name = name[:120]
    persona.description = description.strip()[:300]
    persona.system_prompt = system_prompt.strip()
    persona.default_model = default_model
    persona.allowed_models = allowed
    persona.temperature = temperature
    persona.knowledge_base = knowledge_base
    persona.data_class = data_class
    with transaction.atomic():
        persona.save()
        persona.teams.set(teams)
    return persona


def persona_delete(*, persona: Persona, actor: AbstractBaseUser) -> None:
    if persona.owner_id is not None and persona.owner_id == actor.pk:
        persona.delete()
        return
    if persona.owner_id is not None:
        raise PermissionDenied("A private persona is deleted only by the member who made it.")
    membership = Membership.objects.filter(organization_id=persona.organization_id, user=actor).first()
    if membership is None or not membership.can_manage:
        raise PermissionDenied("Only owners and admins delete shared personas.")
    persona.delete()
