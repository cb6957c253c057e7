"""The organization's sign-in settings: required single sign-on or second factor, and the
mapping of identity-provider groups to roles here."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from console.access import HtmxHttpRequest, manager_required
from console.forms import form_error_apply
from console.models import Role, SsoGroupMapping
from console.signin import policy
from console.signin.forms import SignInPolicyForm, SsoMappingForm
from console.signin.oidc import sso_enabled


@manager_required
@require_http_methods(["GET", "POST"])
def signin_settings(request: HtmxHttpRequest) -> HttpResponse:
    org = request.organization
    is_owner = request.membership.role == Role.OWNER
    current = policy.policy_for(org)
    policy_form = SignInPolicyForm(initial={"require_sso": current.require_sso, "require_totp": current.require_totp})
    mapping_form = SsoMappingForm(can_grant_owner=is_owner)
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "policy":
        policy_form = SignInPolicyForm(request.POST)
        if policy_form.is_valid():
            data = policy_form.cleaned_data
            if data["require_sso"] and not sso_enabled():
                policy_form.add_error("require_sso", "Single sign-on is not configured on this server yet.")
            else:
                policy.policy_update(
                    organization=org,
                    require_sso=data["require_sso"],
                    require_totp=data["require_totp"],
                    actor=request.user,
                )
                messages.success(request, "Sign-in settings saved.")
                return redirect("console:signin-settings")
    elif action == "mapping":
        mapping_form = SsoMappingForm(request.POST, can_grant_owner=is_owner)
        if mapping_form.is_valid():
            try:
                mapping = policy.mapping_set(
                    organization=org,
                    group=mapping_form.cleaned_data["group"],
                    role=mapping_form.cleaned_data["role"],
                    actor=request.user,
                )
            except ValidationError as exc:
                form_error_apply(mapping_form, exc)
            else:
                messages.success(request, f"Members of {mapping.group} join as {mapping.get_role_display()}.")
                return redirect("console:signin-settings")
    context = {
        "policy_form": policy_form,
        "mapping_form": mapping_form,
        "mappings": SsoGroupMapping.objects.filter(organization=org),
        "sso_enabled": sso_enabled(),
        "is_owner": is_owner,
    }
    return render(request, "console/signin_settings.html", context)


@manager_required
@require_POST
def sso_mapping_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    mapping = get_object_or_404(SsoGroupMapping, pk=pk, organization=request.organization)
    if mapping.role == Role.OWNER and request.membership.role != Role.OWNER:
        messages.error(request, "Only an owner removes a mapping to the owner role.")
    else:
        policy.mapping_delete(mapping=mapping, actor=request.user)
        messages.success(request, f"The group {mapping.group} no longer maps to this organization.")
    return redirect("console:signin-settings")
