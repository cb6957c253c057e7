"""The model registry, providers and deployments."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone

from console.models import Organization


class Tier(models.TextChoices):
    FRONTIER = "frontier", "Frontier"
    MID = "mid", "Mid-tier"
    OPEN_WEIGHT = "open-weight", "Open-weight"
    EDGE = "edge", "Edge"


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI / OpenAI-compatible"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", "Google Gemini"


CAPABILITIES = ("chat", "embeddings", "tools", "vision", "json_mode", "streaming")
# What a card created without capabilities can do: a chat model that streams.
DEFAULT_CAPABILITIES = ("chat", "streaming")

PRICE = {"max_digits": 14, "decimal_places": 6, "default": Decimal("0")}


class ModelCard(models.Model):
    """A model in the registry: the operator's global catalog (no organization) or one
    organization's private model. Each organization's prices and visibility of the
    catalog's models are `OrganizationModel` rows (providers.models_org)."""

    name = models.CharField(max_length=200, help_text="The name apps send as `model`.")
    display_name = models.CharField(max_length=200, blank=True)
    vendor = models.CharField(max_length=100)
    version = models.CharField(max_length=100, blank=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.MID)
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    input_price = models.DecimalField(**PRICE, help_text="USD per 1M input tokens.")
    output_price = models.DecimalField(**PRICE, help_text="USD per 1M output tokens.")
    cached_input_price = models.DecimalField(**PRICE, help_text="USD per 1M cached input tokens.")
    operator_priced = models.BooleanField(default=False, help_text="Self-hosted: the operator sets the price.")
    capabilities = models.JSONField(default=list, blank=True)
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    # Lifecycle dates: alerts go out before them; from the retirement date on, /v1 refuses the model
    # with an error that names the replacement.
    deprecation_date = models.DateField(null=True, blank=True)
    retirement_date = models.DateField(null=True, blank=True)
    replacement = models.CharField(max_length=200, blank=True, help_text="The model to use instead once retired.")
    description = models.TextField(blank=True)
    source = models.CharField(max_length=32, default="catalog")  # catalog | import | manual
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # None: the operator's catalog, shared by every organization; set: a private model.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="private_models"
    )

    class Meta:
        ordering = ["vendor", "name"]
        indexes = [models.Index(fields=["tier"]), models.Index(fields=["vendor"])]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(organization__isnull=True), name="modelcard_catalog_name"
            ),
            models.UniqueConstraint(fields=["organization", "name"], name="modelcard_org_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def has(self, capability: str) -> bool:
        return capability in (self.capabilities or [])


class Provider(models.Model):
    """An upstream account: kind, endpoint and an encrypted credential."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="providers"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    base_url = models.CharField(max_length=500, help_text="`sim://openai` points at the built-in simulator.")
    api_version = models.CharField(max_length=64, blank=True)
    # Fernet token of the secret; write-only in every interface.
    secret_encrypted = models.TextField(blank=True)
    # Alternatively the name of an environment variable that holds the secret.
    secret_env = models.CharField(max_length=100, blank=True)
    extra_headers = models.JSONField(default=dict, blank=True)
    # Client request headers passed on upstream (lower-case names); empty: none are.
    forward_headers = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(organization__isnull=True), name="provider_shared_name"
            ),
            models.UniqueConstraint(fields=["organization", "name"], name="provider_org_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted or self.secret_env)

    @property
    def is_simulator(self) -> bool:
        return self.base_url.startswith("sim://")


class Deployment(models.Model):
    """One way to serve a model card: a provider plus the upstream's model id."""

    model = models.ForeignKey(ModelCard, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="deployments")
    name = models.CharField(max_length=200)
    upstream_model = models.CharField(max_length=200)
    weight = models.PositiveIntegerField(default=1)
    timeout = models.FloatField(default=120.0, help_text="Seconds for one attempt (connect and read).")
    ttft_timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds a stream may wait for its first chunk; empty: the gateway default."
    )
    stream_idle_timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds a started stream may go without a chunk; empty: the gateway default."
    )
    is_active = models.BooleanField(default=True)
    # Empty: follow the alias `upstream_model` (the provider may move it to a new version);
    # set: send this dated version instead (e.g. gpt-4o-2024-08-06).
    pinned_version = models.CharField(max_length=200, blank=True)
    health_probe = models.BooleanField(default=True, help_text="Probe this deployment on the health schedule.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # The provider's organization, kept here so names are unique per organization.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+", editable=False
    )

    class Meta:
        ordering = ["model__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(organization__isnull=True), name="deployment_shared_name"
            ),
            models.UniqueConstraint(fields=["organization", "name"], name="deployment_org_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.organization_id = self.provider.organization_id
        super().save(*args, **kwargs)


# Compliance facts live in their own module; imported here so Django registers them.
from providers.models_compliance import CertificationTerm, ComplianceFactChange, ComplianceFacts  # noqa: E402,F401
from providers.models_org import OrganizationModel  # noqa: E402, F401  (each organization's layer)
