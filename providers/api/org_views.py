"""Your organization's layer over the operator's catalog: contracted prices,
visibility and lifecycle of each catalog model (`/api/v1/model-settings/`).

Every member reads; owners and admins change. A model without settings has the
list prices, is visible and follows the catalog's lifecycle.
"""

from __future__ import annotations

from decimal import Decimal

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from console.api.base import ScopedViewSet
from console.api.permissions import MANAGERS
from providers.models import PRICE, ModelCard
from providers.models_org import OrganizationModel, OrgLifecycle
from providers.services_org import catalog_card, organization_model_reset, organization_model_set

MODEL_REF = OpenApiParameter(
    "ref", OpenApiTypes.STR, OpenApiParameter.PATH, description="The catalog model's id or its name."
)


class ModelSettingOutput(serializers.Serializer):
    model = serializers.CharField(source="card.name", help_text="The catalog model.")
    visible = serializers.BooleanField(help_text="False: hidden from your organization (its keys get 404).")
    lifecycle = serializers.CharField(help_text="Your organization's state; empty: the catalog's.")
    catalog_lifecycle = serializers.CharField(source="card.lifecycle")
    list_input_price = serializers.DecimalField(max_digits=14, decimal_places=6, source="card.input_price")
    list_output_price = serializers.DecimalField(max_digits=14, decimal_places=6, source="card.output_price")
    list_cached_input_price = serializers.DecimalField(
        max_digits=14, decimal_places=6, source="card.cached_input_price"
    )
    input_price = serializers.DecimalField(
        max_digits=14, decimal_places=6, allow_null=True, help_text="Contracted; null: the list price."
    )
    output_price = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    cached_input_price = serializers.DecimalField(max_digits=14, decimal_places=6, allow_null=True)
    note = serializers.CharField()


def _contract_price(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=PRICE["max_digits"],
        decimal_places=PRICE["decimal_places"],
        min_value=Decimal(0),
        required=False,
        allow_null=True,
        help_text=f'{help_text} A decimal string, e.g. "0.15".',
    )


class ModelSettingInput(serializers.Serializer):
    visible = serializers.BooleanField(required=False)
    lifecycle = serializers.ChoiceField(
        choices=[("", "As in the catalog"), *OrgLifecycle.choices], required=False, allow_blank=True
    )
    input_price = _contract_price("Contracted USD per 1M input tokens; null: the list price.")
    output_price = _contract_price("Contracted USD per 1M output tokens; null: the list price.")
    cached_input_price = _contract_price("Contracted USD per 1M cached input tokens; null: the list price.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class _Setting:
    """A catalog model with the organization's settings (defaults when it has none)."""

    def __init__(self, card: ModelCard, row: OrganizationModel | None) -> None:
        self.card = card
        self.visible = row.visible if row else True
        self.lifecycle = row.lifecycle if row else ""
        self.input_price = row.input_price if row else None
        self.output_price = row.output_price if row else None
        self.cached_input_price = row.cached_input_price if row else None
        self.note = row.note if row else ""


@extend_schema(tags=["models"])
@extend_schema_view(
    retrieve=extend_schema(parameters=[MODEL_REF], responses=ModelSettingOutput),
    partial_update=extend_schema(parameters=[MODEL_REF], request=ModelSettingInput, responses=ModelSettingOutput),
    destroy=extend_schema(parameters=[MODEL_REF], responses={204: None}),
)
class ModelSettingViewSet(ScopedViewSet):
    """Your organization's contracted prices, visibility and lifecycle of catalog models."""

    queryset = OrganizationModel.objects.none()
    serializer_class = ModelSettingOutput
    read_roles = None
    write_roles = MANAGERS
    lookup_url_kwarg = "ref"
    lookup_value_regex = r"[^/]+(?:/[^/]+)*"

    def _card(self) -> ModelCard:
        card = catalog_card(self.kwargs["ref"])
        if card is None:
            raise Http404
        return card

    def _setting(self, card: ModelCard) -> _Setting:
        row = OrganizationModel.objects.filter(organization=self.organization, model=card).first()
        return _Setting(card, row)

    @extend_schema(
        responses=ModelSettingOutput(many=True), summary="The catalog models your organization has settings for"
    )
    def list(self, request):
        if self.schema_only:
            return Response([])
        rows = (
            OrganizationModel.objects.filter(organization=self.organization)
            .select_related("model")
            .order_by("model__name", "id")
        )
        page = self.paginate_queryset(rows)
        data = ModelSettingOutput([_Setting(row.model, row) for row in page], many=True).data
        return self.get_paginated_response(data)

    def retrieve(self, request, ref=None):
        return Response(ModelSettingOutput(self._setting(self._card())).data)

    def partial_update(self, request, ref=None):
        card = self._card()
        data = self.validated(ModelSettingInput, partial=True)
        organization_model_set(organization=self.organization, model=card, actor=request.user, **data)
        return Response(ModelSettingOutput(self._setting(card)).data)

    def destroy(self, request, ref=None):
        organization_model_reset(organization=self.organization, model=self._card(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
