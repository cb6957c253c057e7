"""Console pages for the model registry, providers and deployments.

The registry is a global catalog everyone reads. Providers belong to an
organization or are shared (no organization): an organization's owners and admins
manage its own providers and their deployments; shared ones are managed by
superusers. Secrets are write-only: forms never pre-fill them.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from console.access import HtmxHttpRequest, is_manager, manager_required, organization_required, render_page
from console.forms import form_error_apply
from providers import services
from providers.forms import DeploymentEditForm, DeploymentForm, ModelFilterForm, ProviderEditForm, ProviderForm
from providers.models import Deployment, Provider
from providers.selectors import deployment_list_for, model_list, provider_list_for, vendor_list

MODELS_PER_PAGE = 25


# ---- access ------------------------------------------------------------------


def _provider_or_404(request: HtmxHttpRequest, pk: int) -> Provider:
    return get_object_or_404(provider_list_for(organization=request.organization), pk=pk)


def is_operator(request: HtmxHttpRequest) -> bool:
    """Platform staff (the people running this Gatehouse) manage the shared providers."""
    return bool(request.user.is_staff or request.user.is_superuser)


def _can_edit(request: HtmxHttpRequest, provider: Provider) -> bool:
    if provider.organization_id is None:
        return is_operator(request)
    return is_manager(request) and provider.organization_id == request.organization.id


def _require_edit(request: HtmxHttpRequest, provider: Provider) -> None:
    if not _can_edit(request, provider):
        raise PermissionDenied(
            "Shared providers are managed by the operator (Gatehouse platform staff); "
            "ask them, or disable the model's route for your organization."
        )


# ---- model registry ------------------------------------------------------------


@organization_required
def model_registry(request: HtmxHttpRequest) -> HttpResponse:
    vendors = [(v.vendor, v.display_name) for v in vendor_list()]
    filters = ModelFilterForm(request.GET, vendors=vendors)
    values = filters.cleaned_data if filters.is_valid() else {}
    models = model_list(
        tier=values.get("tier", ""),
        vendor=values.get("vendor", ""),
        search=values.get("search", "").strip(),
        lifecycle=values.get("lifecycle", ""),
    )
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "filtered": any(values.values())}
    return render_page(request, "providers/model_list.html", "model-results", context)


# ---- providers -----------------------------------------------------------------


@organization_required
def provider_list(request: HtmxHttpRequest) -> HttpResponse:
    providers = list(provider_list_for(organization=request.organization))
    rows = [{"provider": p, "can_edit": _can_edit(request, p)} for p in providers]
    return render(request, "providers/provider_list.html", {"rows": rows, "can_manage": is_manager(request)})


@organization_required
def provider_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(request, pk)
    can_edit = _can_edit(request, provider)
    deployments = provider.deployments.select_related("model").order_by("model__name", "name")
    rows = [{"deployment": d, "can_edit": can_edit} for d in deployments]
    return render(request, "providers/provider_detail.html", {"provider": provider, "rows": rows, "can_edit": can_edit})


@manager_required
@require_http_methods(["GET", "POST"])
def provider_create(request: HtmxHttpRequest) -> HttpResponse:
    form = ProviderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            provider = services.provider_create(organization=request.organization, actor=request.user, **data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Provider {provider.name} created.")
            return redirect("providers:provider-detail", pk=provider.pk)
    return render(request, "providers/provider_form.html", {"form": form, "provider": None})


@organization_required
@require_http_methods(["GET", "POST"])
def provider_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(request, pk)
    _require_edit(request, provider)
    initial = {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "api_version": provider.api_version,
        "secret_env": provider.secret_env,
        "extra_headers": provider.extra_headers,
        "forward_headers": ", ".join(provider.forward_headers or []),
        "is_active": provider.is_active,
    }
    form = ProviderEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        secret = data.pop("secret")
        clear = data.pop("clear_secret")
        try:
            services.provider_update(
                provider=provider, actor=request.user, secret="" if clear else (secret or None), **data
            )
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Provider {provider.name} saved.")
            return redirect("providers:provider-detail", pk=provider.pk)
    return render(request, "providers/provider_form.html", {"form": form, "provider": provider})


@organization_required
@require_http_methods(["GET", "POST"])
def provider_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(request, pk)
    _require_edit(request, provider)
    if request.method == "POST":
        name = provider.name
        services.provider_delete(provider=provider, actor=request.user)
        messages.success(request, f"Provider {name} and its deployments deleted.")
        return redirect("providers:provider-list")
    count = provider.deployments.count()
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete provider {provider.name}?",
            "message": f"Its {count} deployment{'s' if count != 1 else ''} go with it; "
            "requests route to the remaining deployments of each model.",
            "action": reverse("providers:provider-delete", args=[provider.pk]),
            "confirm_label": "Delete provider",
            "cancel_url": reverse("providers:provider-detail", args=[provider.pk]),
        },
    )


@organization_required
@require_http_methods(["POST"])
def provider_toggle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Disable (or enable again) a provider: its deployments stop (or resume) taking traffic."""
    provider = _provider_or_404(request, pk)
    _require_edit(request, provider)
    services.provider_update(provider=provider, actor=request.user, is_active=not provider.is_active)
    state = "enabled" if provider.is_active else "disabled"
    messages.success(request, f"Provider {provider.name} {state}.")
    return redirect("providers:provider-detail", pk=provider.pk)


# ---- deployments ---------------------------------------------------------------


@organization_required
def deployment_list(request: HtmxHttpRequest) -> HttpResponse:
    deployments = list(deployment_list_for(organization=request.organization))
    rows = [{"deployment": d, "can_edit": _can_edit(request, d.provider)} for d in deployments]
    return render(request, "providers/deployment_list.html", {"rows": rows})


@organization_required
@require_http_methods(["GET", "POST"])
def deployment_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(request, pk)
    _require_edit(request, provider)
    form = DeploymentForm(request.POST or None, initial={"weight": 1, "timeout": 120.0})
    if request.method == "POST" and form.is_valid():
        try:
            deployment = services.deployment_create(provider=provider, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Deployment {deployment.name} created.")
            return redirect("providers:provider-detail", pk=provider.pk)
    return render(request, "providers/deployment_form.html", {"form": form, "provider": provider, "deployment": None})


def _deployment_or_404(request: HtmxHttpRequest, pk: int) -> Deployment:
    return get_object_or_404(deployment_list_for(organization=request.organization), pk=pk)


@organization_required
@require_http_methods(["GET", "POST"])
def deployment_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    deployment = _deployment_or_404(request, pk)
    provider = deployment.provider
    _require_edit(request, provider)
    initial = {
        "model": deployment.model_id,
        "name": deployment.name,
        "upstream_model": deployment.upstream_model,
        "weight": deployment.weight,
        "timeout": deployment.timeout,
        "is_active": deployment.is_active,
    }
    form = DeploymentEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["upstream_model"] = data["upstream_model"] or data["model"].name
        try:
            services.deployment_update(deployment=deployment, actor=request.user, **data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Deployment {deployment.name} saved.")
            return redirect("providers:provider-detail", pk=provider.pk)
    return render(
        request, "providers/deployment_form.html", {"form": form, "provider": provider, "deployment": deployment}
    )


@organization_required
@require_http_methods(["GET", "POST"])
def deployment_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    deployment = _deployment_or_404(request, pk)
    provider = deployment.provider
    _require_edit(request, provider)
    if request.method == "POST":
        name = deployment.name
        services.deployment_delete(deployment=deployment, actor=request.user)
        messages.success(request, f"Deployment {name} deleted.")
        return redirect("providers:provider-detail", pk=provider.pk)
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Delete deployment {deployment.name}?",
            "message": f"Requests for {deployment.model.name} stop going to {provider.name} through this deployment.",
            "action": reverse("providers:deployment-delete", args=[deployment.pk]),
            "confirm_label": "Delete deployment",
            "cancel_url": reverse("providers:provider-detail", args=[provider.pk]),
        },
    )
