from __future__ import annotations

from typing import Any

import yaml
from django import forms

from console.models import DataClass
from guardrails.models import Checksum, ReviewStatus
from guardrails.policy import PolicyError, policy_parse


def scope_choices(teams: list[tuple[int, str]], keys: list[tuple[int, str]]) -> list[tuple[str, str]]:
    return (
        [("organization", "Organization (every request)")]
        + [(f"team:{pk}", f"Team: {name}") for pk, name in teams]
        + [(f"key:{pk}", f"Key: {name}") for pk, name in keys]
    )


class PolicyForm(forms.Form):
    scope = forms.ChoiceField()
    document = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "class": "mono", "spellcheck": "false"}),
        required=False,
        help_text="YAML with pii, input, output and injection sections; empty means the defaults.",
    )

    def __init__(self, *args: Any, scopes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = scopes

    def clean_document(self) -> dict:
        text = self.cleaned_data["document"] or ""
        if len(text) > 100_000:
            raise forms.ValidationError("At most 100,000 characters.")
        try:
            document = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"Not valid YAML: {exc}") from None
        try:
            return policy_parse(document)
        except PolicyError as exc:
            raise forms.ValidationError(str(exc)) from None


class RecognizerForm(forms.Form):
    entity = forms.CharField(max_length=40, help_text="Upper case, e.g. EMPLOYEE_ID")
    pattern = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"class": "mono"}))
    checksum = forms.ChoiceField(choices=Checksum.choices, required=False)
    context = forms.CharField(max_length=500, required=False, help_text="Comma-separated; one must precede a match")
    score = forms.FloatField(min_value=0.01, max_value=1.0, initial=0.8)


class ReviewForm(forms.Form):
    status = forms.ChoiceField(choices=[(ReviewStatus.ACCEPTABLE, "Acceptable"), (ReviewStatus.VIOLATION, "Violation")])
    note = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}))


class TestPromptForm(forms.Form):
    ROLES = [("user", "User message"), ("system", "System message"), ("tool", "Tool result / retrieved document")]
    text = forms.CharField(max_length=200_000, widget=forms.Textarea(attrs={"rows": 8}))
    role = forms.ChoiceField(choices=ROLES, initial="user")
    data_class = forms.ChoiceField(choices=[("", "Key default / any")] + list(DataClass.choices), required=False)
    scope = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, scopes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = scopes
