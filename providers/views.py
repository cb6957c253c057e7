"""Console pages for the model registry, providers and deployments.

The registry is the operator's global catalog everyone reads and only platform
operators (staff) change; an organization's owners and admins add private models
and set its prices and visibility of catalog models (`providers.views_org`). Providers belong to an
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
from providers.forms import (
    DeploymentEditForm,
    DeploymentFilterForm,
    DeploymentForm,
    LifecycleForm,
    ModelCardForm,
    ModelFilterForm,
    ProviderEditForm,
    ProviderForm,
)
from providers.models import DEFAULT_CAPABILITIES, Deployment, Lifecycle, ModelCard, Provider
from providers.selectors import (
    deployment_list_for,
    deployments_filter,
    model_list,
    model_list_for,
    model_settings_for,
    provider_list_for,
    vendor_list,
)
from providers.services_org import private_model_upsert

MODELS_PER_PAGE = 25
DEPLOYMENTS_PER_PAGE = 25


# ---- access ------------------------------------------------------------------


def _provider_or_404(request: HtmxHttpRequest, pk: int) -> Provider:
    return get_object_or_404(provider_list_for(organization=request.organization), pk=pk)


def is_operator(request: HtmxHttpRequest) -> bool:
    """Platform staff (the people running this Gatehouse) manage the catalog and the shared providers."""
    return services.is_operator(request.user)


CATALOG_OPERATORS_ONLY = (
    "The model catalog is managed by the platform operator; set your organization's prices and "
    "visibility of a model from its row in the registry."
)


def _card_for_edit(request: HtmxHttpRequest, pk: int) -> ModelCard:
    """A catalog card (operators) or one of the organization's private models (owners, admins)."""
    card = get_object_or_404(model_list_for(organization=request.organization), pk=pk)
    if card.organization_id is None and not is_operator(request):
        raise PermissionDenied(CATALOG_OPERATORS_ONLY)
    if card.organization_id is not None and not is_manager(request):
        raise PermissionDenied("Owners and admins manage the organization's private models.")
    return card


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
        organization=request.organization,
        tier=values.get("tier", ""),
        vendor=values.get("vendor", ""),
        search=values.get("search", "").strip(),
        lifecycle=values.get("lifecycle", ""),
    )
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "filtered": any(values.values()),
        "can_manage": is_manager(request),
        "can_operate": is_operator(request),
        "settings": model_settings_for(organization=request.organization, cards=page.object_list),
    }
    return render_page(request, "providers/model_list.html", "model-results", context)


MODEL_FIELDS_EDITABLE = (
    "display_name",
    "vendor",
    "version",
    "tier",
    "context_window",
    "max_output_tokens",
    "input_price",
    "output_price",
    "cached_input_price",
    "operator_priced",
    "capabilities",
    "lifecycle",
    "deprecation_date",
    "retirement_date",
    "replacement",
    "description",
)


@organization_required
@require_http_methods(["GET", "POST"])
def model_create(request: HtmxHttpRequest) -> HttpResponse:
    """Operators add to the catalog; with `?private=1` owners and admins add a private model."""
    private = request.GET.get("private") == "1" or not is_operator(request)
    if private and not is_manager(request):
        raise PermissionDenied("Owners and admins add the organization's private models.")
    form = ModelCardForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        name = data.pop("name")
        try:
            if private:
                card, _ = private_model_upsert(organization=request.organization, name=name, actor=request.user, **data)
            else:
                card, _ = services.model_card_upsert(name=name, actor=request.user, source="manual", **data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Model {card.name} added to the registry.")
            return redirect("providers:model-edit", pk=card.pk)
    return render(request, "providers/model_form.html", {"form": form, "card": None, "private": private})


@organization_required
@require_http_methods(["GET", "POST"])
def model_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    card = _card_for_edit(request, pk)
    initial = {"name": card.name, **{field: getattr(card, field) for field in MODEL_FIELDS_EDITABLE}}
    form = ModelCardForm(request.POST or None, initial=initial, editing=True, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        data = {field: form.cleaned_data[field] for field in MODEL_FIELDS_EDITABLE}
        if not data["capabilities"]:
            data["capabilities"] = list(DEFAULT_CAPABILITIES)
        try:
            _card_save(request, card, data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"Model {card.name} saved.")
            return redirect("providers:model-edit", pk=card.pk)
    deployments = deployment_list_for(organization=request.organization).filter(model=card).order_by("name")
    return render(
        request,
        "providers/model_form.html",
        {
            "form": form,
            "card": card,
            "deployments": deployments,
            "lifecycles": Lifecycle.choices,
            "private": card.organization_id is not None,
        },
    )


def _card_save(request: HtmxHttpRequest, card: ModelCard, data: dict) -> None:
    if card.organization_id is None:
        services.model_card_upsert(name=card.name, actor=request.user, **data)
    else:
        private_model_upsert(organization=request.organization, name=card.name, actor=request.user, **data)


@organization_required
@require_http_methods(["GET", "POST"])
def model_lifecycle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Move a model to active, deprecated or retired; retiring asks first (requests for it stop)."""
    card = _card_for_edit(request, pk)
    form = LifecycleForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, "Choose active, deprecated or retired.")
        return redirect("providers:model-edit", pk=card.pk)
    target = form.cleaned_data["lifecycle"]
    if request.method == "POST":
        _card_save(request, card, {"lifecycle": target})
        messages.success(request, f"Model {card.name} is now {Lifecycle(target).label.lower()}.")
        return redirect("providers:model-edit", pk=card.pk)
    count = deployment_list_for(organization=request.organization).filter(model=card).count()
    consequences = {
        Lifecycle.RETIRED: f"Requests for {card.name} are refused from now on; its {count} deployment"
        f"{'s' if count != 1 else ''} stay but take no traffic.",
        Lifecycle.DEPRECATED: f"{card.name} keeps serving; it is marked deprecated in the registry and the model list.",
        Lifecycle.ACTIVE: f"{card.name} serves requests again through its deployments.",
    }
    return render(
        request,
        "console/confirm.html",
        {
            "title": f"Make {card.name} {Lifecycle(target).label.lower()}?",
            "message": consequences[target],
            "action": reverse("providers:model-lifecycle", args=[card.pk]),
            "confirm_label": f"Make it {Lifecycle(target).label.lower()}",
            "cancel_url": reverse("providers:model-edit", args=[card.pk]),
            "hidden": {"lifecycle": target},
        },
    )


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
    visible = deployment_list_for(organization=request.organization)
    providers = list(provider_list_for(organization=request.organization).values_list("name", flat=True))
    vendors = [(v.vendor, v.display_name) for v in vendor_list()]
    filters = DeploymentFilterForm(request.GET, providers=providers, vendors=vendors)
    values = filters.cleaned_data if filters.is_valid() else {}
    deployments = deployments_filter(
        visible,
        search=values.get("search", "").strip(),
        provider=values.get("provider", ""),
        vendor=values.get("vendor", ""),
        status=values.get("status", ""),
    )
    page = Paginator(deployments, DEPLOYMENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"deployment": d, "can_edit": _can_edit(request, d.provider)} for d in page.object_list]
    context = {"rows": rows, "page": page, "filters": filters, "filtered": any(values.values())}
    return render_page(request, "providers/deployment_list.html", "deployment-results", context)


@organization_required
@require_http_methods(["GET", "POST"])
def deployment_create(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(request, pk)
    _require_edit(request, provider)
    form = DeploymentForm(
        request.POST or None, initial={"weight": 1, "timeout": 120.0}, organization=request.organization
    )
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
        "pinned_version": deployment.pinned_version,
        "skip_health_probe": not deployment.health_probe,
    }
    form = DeploymentEditForm(request.POST or None, initial=initial, organization=request.organization)
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
