"""What every management-API view shares: the organization it acts in, input
validation, output rendering, pagination and organization-scoped related fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from console.api.permissions import MANAGERS, api_membership
from console.models import Membership, Organization


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ScopedViewSet(GenericViewSet):
    """A thin viewset: input serializers validate, services write, querysets read.

    `get_queryset` of every subclass is scoped to `self.organization`, so an id of
    another organization's object is simply not found (404).
    """

    pagination_class = DefaultPagination
    lookup_value_regex = r"\d+"
    read_roles: frozenset[str] | None = None
    write_roles: frozenset[str] = MANAGERS

    @property
    def membership(self) -> Membership:
        membership = api_membership(self.request)
        assert membership is not None, "the permission class lets no request without a membership through"
        return membership

    @property
    def organization(self) -> Organization:
        return self.membership.organization

    @property
    def schema_only(self) -> bool:
        """True while drf-spectacular inspects the view (no request user then)."""
        return getattr(self, "swagger_fake_view", False)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not self.schema_only and self.request is not None and api_membership(self.request) is not None:
            context["organization"] = self.organization
            context["membership"] = self.membership
        return context

    def validated(
        self, serializer_class: type[serializers.Serializer], *, instance: Any = None, partial: bool = False
    ) -> dict:
        """The request body, validated by an input serializer (400 with field messages otherwise).

        `instance` is the object being changed, for checks such as "this name is taken by another".
        """
        serializer = serializer_class(
            instance, data=self.request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def render(
        self, serializer_class: type[serializers.Serializer], instance: Any, *, status_code: int = status.HTTP_200_OK
    ) -> Response:
        return Response(serializer_class(instance, context=self.get_serializer_context()).data, status=status_code)

    def render_list(self, serializer_class: type[serializers.Serializer], queryset: QuerySet) -> Response:
        page = self.paginate_queryset(queryset)
        serializer = serializer_class(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)


@extend_schema_field(OpenApiTypes.INT)
class OrganizationRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key resolved only among the request organization's objects.

    `scope(organization)` returns the queryset to look in; an id outside it is
    reported as unknown, exactly like an id that does not exist.
    """

    default_error_messages = {
        "does_not_exist": "Unknown {model} {pk_value} in this organization.",
        "incorrect_type": "Expected an id, got {data_type}.",
    }

    def __init__(self, *, scope, model_name: str, **kwargs) -> None:
        self.scope = scope
        self.model_name = model_name
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        return self.scope(self.context["organization"])

    def to_internal_value(self, data) -> Model:
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            return self.get_queryset().get(pk=int(data))
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        except self.get_queryset().model.DoesNotExist:
            self.fail("does_not_exist", model=self.model_name, pk_value=data)


_FORM_FIELD_TYPES: list[tuple[type[forms.Field], Any]] = [
    (forms.DateTimeField, OpenApiTypes.DATETIME),
    (forms.DateField, OpenApiTypes.DATE),
    (forms.IntegerField, OpenApiTypes.INT),
    (forms.DecimalField, OpenApiTypes.DECIMAL),
    (forms.BooleanField, OpenApiTypes.BOOL),
]


def form_parameters(form_class: type[forms.Form]) -> list[OpenApiParameter]:
    """OpenAPI query parameters derived from a filter form, so the schema and the
    filter can never disagree."""
    parameters = []
    for name, field in form_class.base_fields.items():
        kind = next((t for cls, t in _FORM_FIELD_TYPES if isinstance(field, cls)), OpenApiTypes.STR)
        enum = None
        if isinstance(field, forms.ChoiceField):
            enum = [value for value, _ in field.choices if value != ""]
        parameters.append(
            OpenApiParameter(
                name=name,
                type=kind,
                location=OpenApiParameter.QUERY,
                required=False,
                description=str(field.help_text or ""),
                enum=enum,
            )
        )
    return parameters
