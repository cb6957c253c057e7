"""Input and output shapes of the registry, provider and deployment endpoints.

Provider secrets are write-only: accepted on create and update, never part of a
representation (`has_secret` says whether one is set).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from console.api.base import OrganizationRelatedField
from console.models import Organization
from providers.headers import forward_headers_clean
from providers.models import CAPABILITIES, PRICE, Deployment, Lifecycle, ModelCard, Provider, ProviderKind, Tier
from providers.services import MODEL_FIELDS, is_operator

ZERO = Decimal(0)


def visible_providers(organization: Organization) -> QuerySet[Provider]:
    """Shared providers and the organization's own."""
    return Provider.objects.filter(Q(organization__isnull=True) | Q(organization=organization))


# --- model registry ---------------------------------------------------------


class ModelOutput(serializers.ModelSerializer):
    private = serializers.SerializerMethodField(help_text="Your organization's own model (not in the catalog).")

    class Meta:
        model = ModelCard
        fields = ["id", "name", *MODEL_FIELDS, "private", "created_at", "updated_at"]
        read_only_fields = fields

    def get_private(self, card: ModelCard) -> bool:
        return card.organization_id is not None


def _names_seen(organization: Organization | None):
    """What an organization sees: the shared (catalog) objects and its own."""
    if organization is None:
        return Q(organization__isnull=True)
    return Q(organization__isnull=True) | Q(organization=organization)


def price_field(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=PRICE["max_digits"],
        decimal_places=PRICE["decimal_places"],
        min_value=ZERO,
        required=False,
        help_text=f'{help_text} A decimal string, e.g. "0.15".',
    )


class ModelUpdateInput(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    vendor = serializers.CharField(max_length=100, required=False)
    version = serializers.CharField(max_length=100, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    context_window = serializers.IntegerField(min_value=1, required=False)
    max_output_tokens = serializers.IntegerField(min_value=1, required=False)
    input_price = price_field("USD per 1M input tokens.")
    output_price = price_field("USD per 1M output tokens.")
    cached_input_price = price_field("USD per 1M cached input tokens.")
    operator_priced = serializers.BooleanField(required=False)
    capabilities = serializers.ListField(child=serializers.ChoiceField(choices=CAPABILITIES), required=False)
    lifecycle = serializers.ChoiceField(choices=Lifecycle.choices, required=False)
    deprecation_date = serializers.DateField(required=False, allow_null=True)
    retirement_date = serializers.DateField(
        required=False, allow_null=True, help_text="From this day /v1 refuses the model and names the replacement."
    )
    replacement = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)

    def validate_replacement(self, replacement: str) -> str:
        from django.core.exceptions import ValidationError as DjangoValidationError

        from providers.services import replacement_check

        try:
            return replacement_check(replacement)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class ModelCreateInput(ModelUpdateInput):
    name = serializers.CharField(max_length=200, help_text="The name apps send as `model`.")
    vendor = serializers.CharField(max_length=100)

    private = serializers.BooleanField(
        required=False, default=False, help_text="Your organization's own model, visible only in it (owners, admins)."
    )

    def validate_name(self, name: str) -> str:
        name = name.strip()
        if ModelCard.objects.filter(_names_seen(self.context.get("organization")), name=name).exists():
            raise serializers.ValidationError(f"A model named {name!r} exists already; change it with PATCH.")
        return name


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "A model card's id or name."})
class ModelRefField(serializers.Field):
    default_error_messages = {"unknown": "Unknown model {value!r}.", "invalid": "Give a model id or name."}

    def to_internal_value(self, data) -> ModelCard:
        if isinstance(data, bool) or not isinstance(data, int | str) or data == "":
            self.fail("invalid")
        card = None
        organization = self.context.get("organization")
        cards = ModelCard.objects.filter(_names_seen(organization))
        if isinstance(data, int) or data.isdigit():
            card = cards.filter(pk=int(data)).first()
        if card is None and isinstance(data, str):
            card = cards.filter(name=data, organization=organization).first() if organization else None
            card = card or cards.filter(name=data, organization__isnull=True).first()
        if card is None:
            self.fail("unknown", value=data)
        return card

    def to_representation(self, value: ModelCard) -> int:
        return value.pk


# --- providers ----------------------------------------------------------------


class ProviderOutput(serializers.ModelSerializer):
    shared = serializers.SerializerMethodField(help_text="Shared by every organization (read-only for org admins).")
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = Provider
        # Never `secret_encrypted`: the credential is write-only everywhere.
        fields = [
            "id",
            "name",
            "kind",
            "base_url",
            "api_version",
            "extra_headers",
            "forward_headers",
            "secret_env",
            "has_secret",
            "is_active",
            "shared",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_shared(self, provider: Provider) -> bool:
        return provider.organization_id is None


def _secret_field(**kwargs) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text='Write-only; never returned. On update, omit to keep the stored secret, "" to clear it.',
        **kwargs,
    )


class ProviderUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    kind = serializers.ChoiceField(choices=ProviderKind.choices, required=False)
    base_url = serializers.CharField(max_length=500, required=False)
    api_version = serializers.CharField(max_length=64, required=False, allow_blank=True)
    extra_headers = serializers.DictField(child=serializers.CharField(), required=False)
    forward_headers = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text='Client request headers passed upstream, e.g. ["traceparent"]. Never Authorization, '
        "x-api-key, api-key, Cookie, x-gatehouse-* or hop-by-hop headers.",
    )
    secret = _secret_field()
    secret_env = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Or: the environment variable that holds it."
    )
    is_active = serializers.BooleanField(required=False)

    def validate_name(self, name: str) -> str:
        name = name.strip()
        current = self.instance.pk if self.instance is not None else None
        owner = self.instance.organization if self.instance is not None else self.context.get("organization")
        if Provider.objects.filter(_names_seen(owner), name=name).exclude(pk=current).exists():
            raise serializers.ValidationError(f"A provider named {name!r} exists already.")
        return name

    def validate_forward_headers(self, names: list[str]) -> list[str]:
        try:
            return forward_headers_clean(names)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["forward_headers"]) from exc


class ProviderCreateInput(ProviderUpdateInput):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=ProviderKind.choices)
    base_url = serializers.CharField(max_length=500, help_text="http(s)://... or sim://<wire> for the simulator.")
    shared = serializers.BooleanField(
        required=False, default=False, help_text="Shared by every organization (superusers only)."
    )
    is_active = None  # new providers start active


# --- deployments ----------------------------------------------------------------


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string"}], "description": "A provider's id or its name."}
)
class ProviderRefField(OrganizationRelatedField):
    """A provider by id or by name, like `model`; only among the providers the organization can use."""

    default_error_messages = {
        **OrganizationRelatedField.default_error_messages,
        "unknown_name": "Unknown provider {value!r} in this organization.",
    }

    def to_internal_value(self, data) -> Provider:
        if isinstance(data, str) and data and not data.isdigit():
            provider = self.get_queryset().filter(name=data).first()
            if provider is None:
                self.fail("unknown_name", value=data)
            return provider
        return super().to_internal_value(data)


class DeploymentOutput(serializers.ModelSerializer):
    model = serializers.PrimaryKeyRelatedField(read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True)
    provider = serializers.PrimaryKeyRelatedField(read_only=True)
    provider_name = serializers.CharField(source="provider.name", read_only=True)

    class Meta:
        model = Deployment
        fields = [
            "id",
            "name",
            "model",
            "model_name",
            "provider",
            "provider_name",
            "upstream_model",
            "weight",
            "timeout",
            "is_active",
            "pinned_version",
            "health_probe",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeploymentUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    model = ModelRefField(required=False)
    provider = ProviderRefField(scope=visible_providers, model_name="provider", required=False)
    upstream_model = serializers.CharField(max_length=200, required=False, help_text="The upstream's model id.")
    weight = serializers.IntegerField(min_value=0, required=False)
    timeout = serializers.FloatField(min_value=0.001, required=False, help_text="Seconds.")
    is_active = serializers.BooleanField(required=False)
    pinned_version = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="A dated upstream version to send instead of the alias (empty: follow the alias).",
    )
    health_probe = serializers.BooleanField(required=False, help_text="Probed on the health schedule.")

    def validate_name(self, name: str) -> str:
        name = name.strip()
        current = self.instance.pk if self.instance is not None else None
        owner = self.instance.provider.organization if self.instance is not None else self.context.get("organization")
        if Deployment.objects.filter(_names_seen(owner), name=name).exclude(pk=current).exists():
            raise serializers.ValidationError(f"A deployment named {name!r} exists already.")
        return name

    def validate_provider(self, provider: Provider) -> Provider:
        request = self.context["request"]
        if provider.organization_id is None and not is_operator(request.user):
            raise serializers.ValidationError("Shared providers are managed by the operator; choose your own.")
        return provider


class DeploymentCreateInput(DeploymentUpdateInput):
    name = serializers.CharField(max_length=200, required=False, help_text="Default: <model>@<provider>.")
    model = ModelRefField()
    provider = ProviderRefField(scope=visible_providers, model_name="provider")
    weight = serializers.IntegerField(min_value=0, default=1)
    timeout = serializers.FloatField(min_value=0.001, default=120.0, help_text="Seconds.")
    is_active = serializers.BooleanField(default=True)
