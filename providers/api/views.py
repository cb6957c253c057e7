"""The model registry, providers and deployments.

Model cards are the operator's global catalog: every member reads it, only
platform operators (staff) change it; an organization's owners and admins add
its private models (visible only in it) and set its prices and visibility of
catalog models (`/api/v1/model-settings/`). Providers and deployments are shared (operator-managed, read-only for
organization admins unless they are superusers) or belong to one organization;
another organization's are never visible (404).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from console.api.base import ScopedViewSet, form_parameters
from console.api.permissions import MANAGERS
from providers import services
from providers.api.filters import ModelFilterForm, ModelFilterSet
from providers.api.serializers import (
    DeploymentCreateInput,
    DeploymentOutput,
    DeploymentUpdateInput,
    ModelCreateInput,
    ModelOutput,
    ModelUpdateInput,
    ProviderCreateInput,
    ProviderOutput,
    ProviderUpdateInput,
    visible_providers,
)
from providers.models import Deployment, ModelCard, Provider
from providers.services_org import private_model_upsert

SHARED_READ_ONLY = (
    "Shared providers and their deployments are managed by the operator (Gatehouse platform staff); "
    "use a provider of your organization's own."
)
CATALOG_OPERATORS_ONLY = (
    "The model catalog is managed by the platform operator. Set your organization's prices and "
    'visibility under /api/v1/model-settings/, or add a private model with "private": true.'
)
MODEL_REF = OpenApiParameter(
    "ref", OpenApiTypes.STR, OpenApiParameter.PATH, description="The model card's id or its name."
)


@extend_schema(tags=["models"])
@extend_schema_view(
    retrieve=extend_schema(parameters=[MODEL_REF], responses=ModelOutput),
    partial_update=extend_schema(parameters=[MODEL_REF]),
)
class ModelViewSet(ScopedViewSet):
    """The operator's catalog and your organization's private models: all members read; operators
    edit the catalog, owners and admins their private models."""

    queryset = ModelCard.objects.none()
    serializer_class = ModelOutput  # the representation (browsable API, OPTIONS)
    read_roles = None
    write_roles = MANAGERS
    lookup_url_kwarg = "ref"
    lookup_value_regex = r"[^/]+(?:/[^/]+)*"  # names such as meta-llama/Llama-3.1-8B

    def get_queryset(self) -> QuerySet[ModelCard]:
        if self.schema_only:
            return ModelCard.objects.none()
        mine = Q(organization__isnull=True) | Q(organization=self.organization)
        return ModelCard.objects.filter(mine).order_by("vendor", "name", "id")

    def get_object(self) -> ModelCard:
        ref = self.kwargs["ref"]
        queryset = self.get_queryset()
        card = queryset.filter(pk=int(ref)).first() if ref.isdigit() else None
        if card is None:
            # A private model of the organization stands before a catalog model of its name.
            card = queryset.filter(name=ref, organization=self.organization).first()
            card = card or queryset.filter(name=ref, organization__isnull=True).first()
        if card is None:
            raise Http404
        return card

    @extend_schema(parameters=form_parameters(ModelFilterForm), responses=ModelOutput(many=True))
    def list(self, request):
        filterset = ModelFilterSet(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        return self.render_list(ModelOutput, filterset.qs)

    def retrieve(self, request, ref=None):
        return self.render(ModelOutput, self.get_object())

    @extend_schema(request=ModelCreateInput, responses={201: ModelOutput}, summary="Add a model to the registry")
    def create(self, request):
        data = self.validated(ModelCreateInput)
        if data.pop("private", False):
            card, _ = private_model_upsert(organization=self.organization, actor=request.user, **data)
        elif not services.is_operator(request.user):
            raise PermissionDenied(CATALOG_OPERATORS_ONLY)
        else:
            card, _ = services.model_card_upsert(actor=request.user, source="manual", **data)
        return self.render(ModelOutput, card, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=ModelUpdateInput, responses=ModelOutput)
    def partial_update(self, request, ref=None):
        card = self.get_object()
        if card.organization_id is None and not services.is_operator(request.user):
            raise PermissionDenied(CATALOG_OPERATORS_ONLY)
        data = self.validated(ModelUpdateInput, instance=card, partial=True)
        if card.organization_id is None:
            card, _ = services.model_card_upsert(name=card.name, actor=request.user, **data)
        else:
            card, _ = private_model_upsert(organization=self.organization, name=card.name, actor=request.user, **data)
        return self.render(ModelOutput, card)


@extend_schema(tags=["providers"])
class ProviderViewSet(ScopedViewSet):
    """Upstream accounts: shared ones and your organization's own. Secrets are write-only."""

    queryset = Provider.objects.none()
    serializer_class = ProviderOutput  # the representation (browsable API, OPTIONS)
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Provider]:
        if self.schema_only:
            return Provider.objects.none()
        return visible_providers(self.organization).order_by("name", "id")

    def get_writable(self) -> Provider:
        provider = self.get_object()
        if provider.organization_id is None and not services.is_operator(self.request.user):
            raise PermissionDenied(SHARED_READ_ONLY)
        return provider

    @extend_schema(responses=ProviderOutput(many=True))
    def list(self, request):
        return self.render_list(ProviderOutput, self.get_queryset())

    @extend_schema(responses=ProviderOutput)
    def retrieve(self, request, pk=None):
        return self.render(ProviderOutput, self.get_object())

    @extend_schema(request=ProviderCreateInput, responses={201: ProviderOutput})
    def create(self, request):
        data = self.validated(ProviderCreateInput)
        shared = data.pop("shared", False)
        if shared and not services.is_operator(request.user):
            raise PermissionDenied(SHARED_READ_ONLY)
        provider = services.provider_create(
            organization=None if shared else self.organization, actor=request.user, **data
        )
        return self.render(ProviderOutput, provider, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=ProviderUpdateInput, responses=ProviderOutput)
    def partial_update(self, request, pk=None):
        provider = self.get_writable()
        data = self.validated(ProviderUpdateInput, instance=provider, partial=True)
        services.provider_update(provider=provider, actor=request.user, **data)
        return self.render(ProviderOutput, self.get_object())

    @extend_schema(responses={204: None}, summary="Delete a provider and its deployments")
    def destroy(self, request, pk=None):
        services.provider_delete(provider=self.get_writable(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["deployments"])
class DeploymentViewSet(ScopedViewSet):
    """Ways to serve a model: a provider plus the upstream model id, with routing weight and timeout."""

    queryset = Deployment.objects.none()
    serializer_class = DeploymentOutput  # the representation (browsable API, OPTIONS)
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[Deployment]:
        if self.schema_only:
            return Deployment.objects.none()
        visible = Q(provider__organization__isnull=True) | Q(provider__organization=self.organization)
        return (
            Deployment.objects.filter(visible).select_related("model", "provider").order_by("model__name", "name", "id")
        )

    def get_writable(self) -> Deployment:
        deployment = self.get_object()
        if deployment.provider.organization_id is None and not services.is_operator(self.request.user):
            raise PermissionDenied(SHARED_READ_ONLY)
        return deployment

    @extend_schema(responses=DeploymentOutput(many=True))
    def list(self, request):
        return self.render_list(DeploymentOutput, self.get_queryset())

    @extend_schema(responses=DeploymentOutput)
    def retrieve(self, request, pk=None):
        return self.render(DeploymentOutput, self.get_object())

    @extend_schema(request=DeploymentCreateInput, responses={201: DeploymentOutput})
    def create(self, request):
        data = self.validated(DeploymentCreateInput)
        is_active = data.pop("is_active")
        with transaction.atomic():
            deployment = services.deployment_create(actor=request.user, **data)
            if not is_active:
                services.deployment_update(deployment=deployment, actor=request.user, is_active=False)
        return self.render(DeploymentOutput, deployment, status_code=status.HTTP_201_CREATED)

    @extend_schema(request=DeploymentUpdateInput, responses=DeploymentOutput)
    def partial_update(self, request, pk=None):
        deployment = self.get_writable()
        data = self.validated(DeploymentUpdateInput, instance=deployment, partial=True)
        if data:
            services.deployment_update(deployment=deployment, actor=request.user, **data)
        return self.render(DeploymentOutput, self.get_object())

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.deployment_delete(deployment=self.get_writable(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
