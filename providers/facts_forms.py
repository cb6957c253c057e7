"""The console form for a provider's or a deployment's compliance facts."""

from __future__ import annotations

from typing import Any

from django import forms

from providers.models_compliance import REGIONS

TRISTATE = [("", "unknown / inherited"), ("true", "yes"), ("false", "no")]


class FactsForm(forms.Form):
    region = forms.ChoiceField(
        required=False, choices=[("", "unknown / inherited"), *((r, r) for r in REGIONS)], label="Data residency"
    )
    region_name = forms.CharField(
        required=False, max_length=100, label="Provider region", help_text="As the provider names it, e.g. eu-west-1."
    )
    certifications = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Certifications and agreements"
    )
    inherit_certifications = forms.BooleanField(
        required=False, label="Inherit the provider's certifications", initial=True
    )
    retention_days = forms.IntegerField(
        required=False, min_value=0, max_value=36500, label="Retention (days)", help_text="0: nothing is kept."
    )
    trains_on_data = forms.TypedChoiceField(
        required=False, choices=TRISTATE, label="May train on the data", coerce=lambda v: v == "true", empty_value=None
    )
    zero_data_retention = forms.TypedChoiceField(
        required=False,
        choices=TRISTATE,
        label="Zero-data-retention agreement",
        coerce=lambda v: v == "true",
        empty_value=None,
    )
    review_due = forms.DateField(
        required=False,
        label="Review by",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="After this date the facts show as stale.",
    )
    evidence_url = forms.URLField(required=False, max_length=500, label="Evidence link", assume_scheme="https")

    def __init__(self, *args: Any, vocabulary: list[tuple[str, str]], deployment: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["certifications"].choices = vocabulary
        self.deployment = deployment
        if not deployment:
            del self.fields["inherit_certifications"]

    @staticmethod
    def initial_for(stated: dict[str, Any], *, deployment: bool) -> dict[str, Any]:
        initial = {key: value for key, value in stated.items() if key != "certifications"}
        for key in ("trains_on_data", "zero_data_retention"):
            if key in stated:
                initial[key] = "true" if stated[key] else "false"
        initial["certifications"] = stated.get("certifications") or []
        if deployment:
            initial["inherit_certifications"] = "certifications" not in stated
        return initial

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        inherit = data.pop("inherit_certifications", False)
        if self.deployment and inherit:
            data["certifications"] = None
        else:
            data["certifications"] = list(data["certifications"])
        return data
