"""Console pages for compliance facts: a provider's, a deployment's (over its provider's),
a model card's deployments, and the organization's certification vocabulary."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console.access import HtmxHttpRequest, is_manager, organization_required
from console.forms import form_error_apply
from providers import facts_services
from providers.facts import facts_resolve
from providers.facts_forms import FactsForm
from providers.models import ModelCard
from providers.selectors import deployment_list_for, provider_list_for
from providers.views import _can_edit


def _form(request: HtmxHttpRequest, stated: dict[str, Any], *, deployment: bool, owner_org: int | None) -> FactsForm:
    vocabulary = facts_services.certification_vocabulary(organization_id=owner_org or request.organization.id)
    initial = FactsForm.initial_for(stated, deployment=deployment)
    data = request.POST if request.method == "POST" else None
    return FactsForm(data, initial=initial, vocabulary=vocabulary, deployment=deployment)


def _save(request: HtmxHttpRequest, form: FactsForm, **subject: Any) -> bool:
    if not form.is_valid():
        return False
    try:
        facts_services.compliance_facts_set(actor=request.user, source="console", **subject, **form.values())
    except ValidationError as exc:
        form_error_apply(form, exc)
        return False
    return True


def _facts_page(request: HtmxHttpRequest, *, kind: str, subject, provider, stated, facts, **extra) -> HttpResponse:
    """The facts form of a provider or a deployment: shown, and saved by whoever may edit it."""
    can_edit = _can_edit(request, provider)
    form = _form(request, stated, deployment=kind == "deployment", owner_org=provider.organization_id)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied(f"Shared {kind}s' facts are stated by the operator.")
        if _save(request, form, **{kind: subject}):
            messages.success(request, f"Compliance facts of {subject.name} saved.")
            return redirect(f"providers:{kind}-facts", pk=subject.pk)
    context = {
        "subject": subject,
        "kind": kind,
        "provider": provider,
        "form": form,
        "can_edit": can_edit,
        "facts": facts,
        "stale": facts.stale(timezone.localdate()),
        **extra,
    }
    return render(request, "providers/facts_form.html", context)


@organization_required
@require_http_methods(["GET", "POST"])
def provider_facts(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    provider = get_object_or_404(provider_list_for(organization=request.organization), pk=pk)
    stated = facts_services.facts_stated(provider=provider)
    return _facts_page(
        request,
        kind="provider",
        subject=provider,
        provider=provider,
        stated=stated,
        facts=facts_resolve(deployment=None, provider=stated),
        history=facts_services.facts_history(kind="provider", subject_ids=[provider.id]),
    )


@organization_required
@require_http_methods(["GET", "POST"])
def deployment_facts(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    deployment = get_object_or_404(deployment_list_for(organization=request.organization), pk=pk)
    provider = deployment.provider
    return _facts_page(
        request,
        kind="deployment",
        subject=deployment,
        provider=provider,
        stated=facts_services.facts_stated(deployment=deployment),
        facts=facts_services.facts_effective(deployment),
        inherited=facts_services.facts_stated(provider=provider),
        history=facts_services.deployment_facts_history(deployment),
    )


@organization_required
def model_facts(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    # The catalog's cards and the organization's private ones: never another organization's.
    card = get_object_or_404(
        ModelCard.objects.filter(Q(organization__isnull=True) | Q(organization=request.organization)), pk=pk
    )
    deployments = list(deployment_list_for(organization=request.organization).filter(model=card))
    context = {"card": card, **facts_services.facts_panel(deployments)}
    return render(request, "providers/model_facts.html", context)


@organization_required
@require_http_methods(["GET", "POST"])
def certifications(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not is_manager(request):
            raise PermissionDenied("Only owners and admins change the vocabulary.")
        try:
            if request.POST.get("remove"):
                facts_services.certification_term_remove(
                    organization=request.organization, slug=request.POST["remove"], actor=request.user
                )
            else:
                facts_services.certification_term_put(
                    organization=request.organization,
                    slug=request.POST.get("slug", ""),
                    label=request.POST.get("label", ""),
                    actor=request.user,
                )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, "Vocabulary saved.")
        return redirect("providers:certifications")
    own = {term.slug for term in request.organization.certification_terms.all()}
    terms = facts_services.certification_vocabulary(organization_id=request.organization.id)
    context = {"terms": [(slug, label, slug in own) for slug, label in terms], "can_manage": is_manager(request)}
    return render(request, "providers/certifications.html", context)
