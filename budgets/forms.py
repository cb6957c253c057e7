"""Console forms for budgets, rate limits and alert settings; the services do the writes."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from budgets.models import Period, StoreFailure
from console.forms import comma_list
from console.models import ApiKey, Organization, Team


def target_choices(organization: Organization, *, deployments: bool = False) -> list:
    """Grouped choices of what a budget or limit can apply to, valued `scope:id`."""
    users = get_user_model().objects.filter(memberships__organization=organization).order_by("username")
    keys = ApiKey.objects.filter(organization=organization, revoked_at__isnull=True).order_by("name")
    choices: list = [
        ("Organization", [(f"organization:{organization.id}", organization.name)]),
        ("Teams", [(f"team:{t.id}", t.name) for t in Team.objects.filter(organization=organization)]),
        ("Users", [(f"user:{u.id}", u.get_username()) for u in users]),
        ("Keys", [(f"key:{k.id}", f"{k.name} ({k.prefix}…)") for k in keys]),
    ]
    if deployments:
        from providers.models import Deployment

        owned = Deployment.objects.filter(provider__organization=organization).order_by("name")
        choices.append(("Deployments", [(f"deployment:{d.id}", d.name) for d in owned]))
    return [group for group in choices if group[1]]


def _target(value: str) -> tuple[str, int]:
    scope, _, pk = value.partition(":")
    return scope, int(pk)


def _thresholds(value: str) -> list[int]:
    try:
        return [int(part) for part in comma_list(value.replace("%", ""))]
    except ValueError as exc:
        raise forms.ValidationError("Whole percentages separated by commas, e.g. 50, 80, 100.") from exc


class BudgetForm(forms.Form):
    target = forms.ChoiceField(label="Applies to")
    amount = forms.DecimalField(label="Amount (USD)", min_value=0, max_digits=20, decimal_places=10)
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTHLY)
    hard = forms.BooleanField(label="Hard limit (refuse requests)", required=False, initial=True)
    thresholds = forms.CharField(label="Alert at (%)", initial="50, 80, 100", required=False)

    def __init__(self, *args, organization: Organization, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = target_choices(organization)

    def clean_thresholds(self) -> list[int]:
        return _thresholds(self.cleaned_data.get("thresholds") or "")

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["scope"], data["scope_id"] = _target(data.pop("target"))
        return data


class BudgetEditForm(forms.Form):
    amount = forms.DecimalField(label="Amount (USD)", min_value=0, max_digits=20, decimal_places=10)
    hard = forms.BooleanField(label="Hard", required=False)
    thresholds = forms.CharField(label="Alert at (%)", required=False)

    def clean_thresholds(self) -> list[int]:
        return _thresholds(self.cleaned_data.get("thresholds") or "")


class RateLimitForm(forms.Form):
    target = forms.ChoiceField(label="Applies to")
    rpm = forms.IntegerField(label="Requests / min", min_value=1, required=False)
    tpm = forms.IntegerField(label="Tokens / min", min_value=1, required=False)

    def __init__(self, *args, organization: Organization, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = target_choices(organization, deployments=True)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data["scope"], data["scope_id"] = _target(data.pop("target"))
        return data


class AlertSettingsForm(forms.Form):
    webhook_url = forms.URLField(label="Webhook URL", required=False, assume_scheme="https")
    webhook_secret = forms.CharField(
        label="Signing secret",
        required=False,
        min_length=16,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current one (or have one generated).",
    )
    emails = forms.CharField(
        label="E-mail to", required=False, help_text="Comma-separated; empty: owners, admins and finance."
    )

    def clean_emails(self) -> list[str]:
        return comma_list(self.cleaned_data.get("emails") or "")


class StorePolicyForm(forms.Form):
    on_store_failure = forms.ChoiceField(
        label="When the budget store is unavailable",
        choices=StoreFailure.choices,
        widget=forms.RadioSelect,
        help_text="Redis or the database cannot be reached: refuse requests (503), or serve them without a hold.",
    )
