"""Console forms for the registry filters, providers and deployments."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from providers.headers import forward_headers_clean
from providers.models import CAPABILITIES, Lifecycle, ModelCard, ProviderKind, Tier


class ModelFilterForm(forms.Form):
    search = forms.CharField(required=False, max_length=200, label="Search")
    tier = forms.ChoiceField(required=False, choices=[("", "All tiers"), *Tier.choices])
    vendor = forms.ChoiceField(required=False, choices=[("", "All vendors")])
    lifecycle = forms.ChoiceField(required=False, choices=[("", "Any lifecycle"), *Lifecycle.choices])

    def __init__(self, *args, vendors: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["vendor"].choices = [("", "All vendors"), *vendors]


class ProviderForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    base_url = forms.CharField(
        max_length=500,
        label="Base URL",
        help_text="e.g. https://api.openai.com/v1 — sim://openai/v1 points at the built-in simulator.",
    )
    api_version = forms.CharField(max_length=64, required=False, label="API version", help_text="Azure OpenAI only.")
    secret = forms.CharField(
        required=False,
        strip=True,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never shown again.",
    )
    secret_env = forms.CharField(
        max_length=100,
        required=False,
        label="Or: environment variable",
        help_text="The name of an environment variable of the gateway that holds the key.",
    )
    extra_headers = forms.JSONField(
        required=False,
        initial=dict,
        label="Extra headers (JSON)",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Sent with every upstream call, e.g. {"OpenAI-Organization": "org-…"}.',
    )

    forward_headers = forms.CharField(
        required=False,
        max_length=2000,
        label="Forward client headers",
        help_text="Comma-separated request headers passed on to the provider, e.g. traceparent, tracestate. "
        "None by default; Authorization, API-key, Cookie, x-gatehouse-* and hop-by-hop headers never are.",
    )

    def clean_forward_headers(self) -> list[str]:
        raw = self.cleaned_data.get("forward_headers") or ""
        try:
            return forward_headers_clean([part for part in raw.replace("\n", ",").split(",")])
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["forward_headers"]) from exc

    def clean_base_url(self) -> str:
        value = self.cleaned_data["base_url"].strip()
        if not value.startswith(("http://", "https://", "sim://")):
            raise forms.ValidationError("The base URL must start with http://, https:// or sim://.")
        return value.rstrip("/")

    def clean_extra_headers(self) -> dict[str, str]:
        value = self.cleaned_data.get("extra_headers") or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise forms.ValidationError('Give an object of header names to string values, e.g. {"X-Team": "research"}.')
        return value


class ProviderEditForm(ProviderForm):
    clear_secret = forms.BooleanField(required=False, label="Remove the stored API key")
    is_active = forms.BooleanField(required=False, label="Active")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_secret") and cleaned.get("secret"):
            self.add_error("clear_secret", "Either enter a new key or remove the stored one, not both.")
        return cleaned


class DeploymentForm(forms.Form):
    model = forms.ModelChoiceField(queryset=ModelCard.objects.order_by("name"), empty_label="Choose a model")
    name = forms.CharField(max_length=200, required=False, help_text="Unique. Leave empty for model@provider.")
    upstream_model = forms.CharField(
        max_length=200,
        required=False,
        label="Upstream model id",
        help_text="The id the provider knows the model by. Leave empty for the registry name.",
    )
    weight = forms.IntegerField(min_value=0, initial=1, help_text="Share of traffic among deployments of a model.")
    timeout = forms.FloatField(min_value=0.1, initial=120.0, label="Timeout (seconds)")
    pinned_version = forms.CharField(
        max_length=200,
        required=False,
        label="Pinned version",
        help_text="A dated upstream version to send (e.g. gpt-4o-2024-08-06). Empty: follow the alias above.",
    )
    skip_health_probe = forms.BooleanField(required=False, label="Leave out of scheduled health probes")

    def clean(self):
        data = super().clean()
        data["health_probe"] = not data.pop("skip_health_probe", False)
        data["pinned_version"] = (data.get("pinned_version") or "").strip()
        return data

    def __init__(self, *args, organization=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The catalog and the organization's own models, never another organization's.
        mine = Q(organization__isnull=True) | Q(organization=organization)
        self.fields["model"].queryset = ModelCard.objects.filter(mine).order_by("name")


class DeploymentEditForm(DeploymentForm):
    name = forms.CharField(max_length=200)
    is_active = forms.BooleanField(required=False, label="Active")


class ModelCardForm(forms.Form):
    """A registry entry; the service validates again and normalizes the vendor."""

    name = forms.CharField(max_length=200, help_text="The name apps send as `model`; cannot change later.")
    display_name = forms.CharField(max_length=200, required=False)
    vendor = forms.CharField(max_length=100, help_text="Who makes the model, e.g. openai, anthropic, meta.")
    version = forms.CharField(max_length=100, required=False)
    tier = forms.ChoiceField(choices=Tier.choices, initial=Tier.MID)
    context_window = forms.IntegerField(min_value=1, initial=128_000, label="Context window (tokens)")
    max_output_tokens = forms.IntegerField(min_value=1, initial=4096, label="Max output tokens")
    input_price = forms.DecimalField(min_value=0, max_digits=14, decimal_places=6, initial=0, label="Input / 1M (USD)")
    output_price = forms.DecimalField(
        min_value=0, max_digits=14, decimal_places=6, initial=0, label="Output / 1M (USD)"
    )
    cached_input_price = forms.DecimalField(
        min_value=0, max_digits=14, decimal_places=6, initial=0, label="Cached input / 1M (USD)"
    )
    operator_priced = forms.BooleanField(required=False, label="Self-hosted: the operator sets the price")
    capabilities = forms.MultipleChoiceField(
        choices=[(c, c.replace("_", " ")) for c in CAPABILITIES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: chat with streaming.",
    )
    lifecycle = forms.ChoiceField(choices=Lifecycle.choices, initial=Lifecycle.ACTIVE)
    deprecation_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    retirement_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="From this day /v1 refuses the model and names the replacement.",
    )
    replacement = forms.CharField(max_length=200, required=False, help_text="The model to use instead.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_replacement(self) -> str:
        from providers.services import replacement_check

        return replacement_check(self.cleaned_data.get("replacement", ""))

    def __init__(self, *args, editing: bool = False, organization=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        if editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name apps send as `model`."

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        seen = Q(organization__isnull=True) | Q(organization=self.organization)
        if not self.fields["name"].disabled and ModelCard.objects.filter(seen, name=name).exists():
            raise forms.ValidationError(f"A model named {name!r} exists already.")
        return name

    def clean(self):
        cleaned = super().clean()
        context, output = cleaned.get("context_window"), cleaned.get("max_output_tokens")
        if context and output and output > context:
            self.add_error("max_output_tokens", "Cannot be more than the context window.")
        caps = set(cleaned.get("capabilities") or [])
        if {"embeddings", "streaming"} <= caps and "chat" not in caps:
            self.add_error("capabilities", "Streaming is for chat models; an embeddings model does not stream.")
        return cleaned


class LifecycleForm(forms.Form):
    lifecycle = forms.ChoiceField(choices=Lifecycle.choices)


class DeploymentFilterForm(forms.Form):
    search = forms.CharField(required=False, max_length=200, label="Search")
    provider = forms.ChoiceField(required=False, choices=[("", "All providers")])
    vendor = forms.ChoiceField(required=False, choices=[("", "All vendors")])
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), ("active", "Active"), ("disabled", "Disabled")]
    )

    def __init__(self, *args, providers: list[str], vendors: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "All providers"), *[(p, p) for p in providers]]
        self.fields["vendor"].choices = [("", "All vendors"), *vendors]
