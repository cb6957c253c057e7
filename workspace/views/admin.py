"""Personas (shared with the organization or teams by owners and admins; private ones by
members when allowed) and the workspace settings."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required
from console.forms import form_error_apply
from workspace import personas as persona_services
from workspace import services
from workspace.forms import PersonaForm, SettingsForm
from workspace.models import Persona
from workspace.selectors import personas_for, personas_managed, workspace_settings


def _persona_fields(form: PersonaForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "description": data["description"],
        "system_prompt": data["system_prompt"],
        "default_model": data["default_model"],
        "allowed_models": data["allowed_models"],
        "temperature": data["temperature"],
        "knowledge_base": data["knowledge_base"],
        "data_class": data["data_class"],
        "teams": list(data.get("teams") or []),
        "private": bool(data.get("private")),
    }


def _persona_form(request: HtmxHttpRequest, *args, **kwargs) -> PersonaForm:
    return PersonaForm(*args, organization=request.organization, manager=is_manager(request), **kwargs)


@organization_required
def persona_list(request: HtmxHttpRequest) -> HttpResponse:
    """Shared personas (and the member's private ones); owners and admins create shared or
    team personas, members private ones when the organization allows it."""
    form = _persona_form(request)
    if request.method == "POST":
        form = _persona_form(request, request.POST)
        if form.is_valid():
            try:
                persona = persona_services.persona_save(
                    organization=request.organization, actor=request.user, **_persona_fields(form)
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Persona {persona.name} created.")
                return redirect("workspace:persona-list")
    manager = is_manager(request)
    if manager:
        personas = personas_managed(organization=request.organization, user=request.user)
    else:
        personas = personas_for(organization=request.organization, user=request.user).prefetch_related("teams")
    context = {
        "personas": personas,
        "form": form,
        "can_manage": manager,
        "can_create": manager or workspace_settings(organization=request.organization).private_personas,
    }
    return render(request, "workspace/personas.html", context)


def _editable(request: HtmxHttpRequest, pk: int) -> Persona:
    persona = get_object_or_404(Persona, pk=pk, organization=request.organization)
    if persona.owner_id is not None and persona.owner_id != request.user.pk:
        raise Http404("No such persona.")
    if persona.owner_id is None and not is_manager(request):
        raise PermissionDenied("Only owners and admins edit shared personas.")
    return persona


@organization_required
def persona_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    persona = _editable(request, pk)
    initial = {
        "name": persona.name,
        "description": persona.description,
        "system_prompt": persona.system_prompt,
        "default_model": persona.default_model,
        "allowed_models": ", ".join(persona.allowed_models),
        "temperature": persona.temperature,
        "knowledge_base": persona.knowledge_base_id,
        "data_class": persona.data_class,
        "teams": list(persona.teams.all()),
        "private": persona.owner_id is not None,
    }
    form = _persona_form(request, initial=initial)
    if request.method == "POST":
        form = _persona_form(request, request.POST)
        if form.is_valid():
            try:
                persona_services.persona_save(
                    organization=request.organization, actor=request.user, persona=persona, **_persona_fields(form)
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Persona saved.")
                return redirect("workspace:persona-list")
    return render(request, "workspace/persona_form.html", {"form": form, "persona": persona})


@organization_required
def persona_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    persona = _editable(request, pk)
    if request.method == "POST":
        persona_services.persona_delete(persona=persona, actor=request.user)
        messages.success(request, f"Persona {persona.name} deleted.")
        return redirect("workspace:persona-list")
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete persona {persona.name}?",
            "message": "Conversations started with it keep their messages and lose the persona.",
            "action": reverse("workspace:persona-delete", args=[pk]),
            "confirm_label": "Delete persona",
            "cancel_url": reverse("workspace:persona-list"),
        },
    )


@manager_required
def settings_edit(request: HtmxHttpRequest) -> HttpResponse:
    current = workspace_settings(organization=request.organization)
    form = SettingsForm(
        initial={
            "enabled": current.enabled,
            "allowed_models": ", ".join(current.allowed_models),
            "retention_days": current.retention_days,
            "uploads_allowed": current.uploads_allowed,
            "private_personas": current.private_personas,
        }
    )
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                services.settings_put(organization=request.organization, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Workspace settings saved.")
                return redirect("workspace:settings")
    return render(request, "workspace/settings.html", {"form": form})
