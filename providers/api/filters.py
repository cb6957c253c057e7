"""The one definition of how the model registry is filtered (API and console lists)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q, QuerySet

from providers.models import CAPABILITIES, Lifecycle, ModelCard, Tier

ANY = [("", "Any")]


class ModelFilterForm(forms.Form):
    tier = forms.ChoiceField(required=False, choices=ANY + Tier.choices)
    vendor = forms.CharField(required=False, max_length=100)
    lifecycle = forms.ChoiceField(required=False, choices=ANY + Lifecycle.choices)
    capability = forms.ChoiceField(required=False, choices=ANY + [(c, c) for c in CAPABILITIES])
    search = forms.CharField(required=False, max_length=200, help_text="Part of the name, display name or vendor.")


class ModelFilterSet:
    """`ModelFilterSet(request.GET, queryset=qs)`: `.is_valid()`, `.errors`, `.qs`, `.form`."""

    form_class = ModelFilterForm

    def __init__(self, data: Any = None, queryset: QuerySet[ModelCard] | None = None) -> None:
        known = {n: data.get(n) for n in self.form_class.base_fields if data and data.get(n) not in (None, "")}
        self.form = self.form_class(data=known)
        self.queryset = queryset if queryset is not None else ModelCard.objects.all()

    def is_valid(self) -> bool:
        return self.form.is_valid()

    @property
    def errors(self) -> dict[str, list[str]]:
        return {name: list(messages) for name, messages in self.form.errors.items()}

    @property
    def qs(self) -> QuerySet[ModelCard]:
        if not self.is_valid():
            raise ValueError("The model filters are not valid; read `.errors`.")
        data = self.form.cleaned_data
        queryset = self.queryset
        if data["tier"]:
            queryset = queryset.filter(tier=data["tier"])
        if data["vendor"]:
            queryset = queryset.filter(vendor__iexact=data["vendor"])
        if data["lifecycle"]:
            queryset = queryset.filter(lifecycle=data["lifecycle"])
        if data["capability"]:
            # Capabilities are a cleaned list of known names; its JSON text holds each one quoted.
            queryset = queryset.filter(capabilities__icontains=f'"{data["capability"]}"')
        if data["search"]:
            term = data["search"]
            queryset = queryset.filter(
                Q(name__icontains=term) | Q(display_name__icontains=term) | Q(vendor__icontains=term)
            )
        return queryset
