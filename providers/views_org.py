"""Console page of an organization's layer over one catalog model: its contracted
prices, visibility and lifecycle. Owners and admins change it; the catalog entry
itself is the operator's."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from console.access import HtmxHttpRequest, manager_required
from console.forms import form_error_apply
from providers.models import ModelCard
from providers.models_org import OrganizationModel, OrgLifecycle
from providers.selectors import deployment_list_for
from providers.services_org import organization_model_reset, organization_model_set


def _price(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=14,
        decimal_places=6,
        label=label,
        help_text="Contracted, USD per 1M tokens. Empty: the list price.",
    )


class ModelSettingForm(forms.Form):
    visible = forms.BooleanField(required=False, label="Visible to this organization", initial=True)
    lifecycle = forms.ChoiceField(
        required=False, choices=[("", "As in the catalog"), *OrgLifecycle.choices], label="Lifecycle here"
    )
    input_price = _price("Input / 1M (USD)")
    output_price = _price("Output / 1M (USD)")
    cached_input_price = _price("Cached input / 1M (USD)")
    note = forms.CharField(required=False, max_length=500, help_text="e.g. the contract the rates come from.")


@manager_required
@require_http_methods(["GET", "POST"])
def model_organization(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(ModelCard, pk=pk, organization__isnull=True)
    organization = request.organization
    if request.method == "POST" and request.POST.get("reset"):
        organization_model_reset(organization=organization, model=card, actor=request.user)
        messages.success(request, f"{card.name} follows the catalog again in {organization.name}.")
        return redirect("providers:model-organization", pk=card.pk)
    row = OrganizationModel.objects.filter(organization=organization, model=card).first()
    initial = {"visible": True}
    if row is not None:
        initial = {name: getattr(row, name) for name in ModelSettingForm.base_fields}
    form = ModelSettingForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            organization_model_set(organization=organization, model=card, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_error_apply(form, exc)
        else:
            messages.success(request, f"{organization.name}'s settings of {card.name} saved.")
            return redirect("providers:model-organization", pk=card.pk)
    deployments = deployment_list_for(organization=organization).filter(model=card).order_by("name")
    context = {"form": form, "card": card, "row": row, "deployments": deployments}
    return render(request, "providers/model_org_form.html", context)
