"""Personas (every member sees them; owners and admins edit them) and workspace settings."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required
from console.forms import form_error_apply
from workspace import services
from workspace.forms import PersonaForm, SettingsForm
from workspace.models import Persona
from workspace.selectors import workspace_settings


def _persona_fields(form: PersonaForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "description": data["description"],
        "system_prompt": data["system_prompt"],
        "default_model": data["default_model"],
        "allowed_models": data["allowed_models"],
        "temperature": data["temperature"],
    }


@organization_required
def persona_list(request: HtmxHttpRequest) -> HttpResponse:
    form = PersonaForm()
    if request.method == "POST":
        form = PersonaForm(request.POST)
        if form.is_valid():
            try:
                persona = services.persona_save(
                    organization=request.organization, actor=request.user, **_persona_fields(form)
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, f"Persona {persona.name} created.")
                return redirect("workspace:persona-list")
    personas = Persona.objects.filter(organization=request.organization)
    return render(
        request, "workspace/personas.html", {"personas": personas, "form": form, "can_manage": is_manager(request)}
    )


@manager_required
def persona_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    persona = get_object_or_404(Persona, pk=pk, organization=request.organization)
    initial = {
        "name": persona.name,
        "description": persona.description,
        "system_prompt": persona.system_prompt,
        "default_model": persona.default_model,
        "allowed_models": ", ".join(persona.allowed_models),
        "temperature": persona.temperature,
    }
    form = PersonaForm(initial=initial)
    if request.method == "POST":
        form = PersonaForm(request.POST)
        if form.is_valid():
            try:
                services.persona_save(
                    organization=request.organization, actor=request.user, persona=persona, **_persona_fields(form)
                )
            except ValidationError as exc:
                form_error_apply(form, exc)
            else:
                messages.success(request, "Persona saved.")
                return redirect("workspace:persona-list")
    return render(request, "workspace/persona_form.html", {"form": form, "persona": persona})


@manager_required
def persona_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    persona = get_object_or_404(Persona, pk=pk, organization=request.organization)
    if request.method == "POST":
        services.persona_delete(persona=persona, actor=request.user)
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
