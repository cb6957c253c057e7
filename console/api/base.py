"""What every management-API view shares: the organization it acts in, input
validation, output rendering, pagination and organization-scoped related fields."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from console.api.parsers import NUL
from console.api.permissions import MANAGERS, api_membership
from console.models import Membership, Organization

MAX_OFFSET = 1_000_000_000
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def strict_int(request, name: str, *, minimum: int, maximum: int) -> int | None:
    """A query parameter as an integer in [minimum, maximum]; None when absent; 400 otherwise.

    DRF's paginators quietly fall back to their defaults on `limit=abc`: the published
    schema says integer, so anything else is refused as the schema promises.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = int(raw) if re.fullmatch(r"-?[0-9]{1,19}", raw) else None
    if value is None or not minimum <= value <= maximum:
        raise serializers.ValidationError({name: [f"Expected an integer from {minimum} to {maximum}."]})
    return value


def int_parameter(name: str, description: str, *, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


def strict_text_fields() -> None:
    """Text, decimal and boolean fields of the management API take JSON strings and booleans only.

    DRF's CharField turns a number into its text (`"name": 0` becomes "0") and its
    BooleanField reads 0, 1, "yes" as booleans, while the published schema says `string`
    and `boolean`: the API refuses what its schema refuses (the API parses JSON only).
    """
    if getattr(serializers.CharField, "_gatehouse_strict", False):
        return
    lenient = serializers.CharField.to_internal_value

    def to_internal_value(field: serializers.CharField, data: Any) -> str:
        if not isinstance(data, str):
            field.fail("invalid")
        return lenient(field, data)

    def boolean_value(field: serializers.BooleanField, data: Any) -> bool:
        if not isinstance(data, bool):  # not 0, 1, "true", "on": the schema says boolean
            field.fail("invalid", input=data)
        return data

    exact = serializers.DecimalField.to_internal_value

    def decimal_value(field: serializers.DecimalField, data: Any) -> Any:
        if not isinstance(data, str):  # money travels as a decimal string, never a binary float
            field.fail("invalid")
        return exact(field, data)

    whole = serializers.IntegerField.to_internal_value

    def integer_value(field: serializers.IntegerField, data: Any) -> int:
        # Unbounded input integers overflow the database (SQLite: 2**63, a PostgreSQL integer
        # column: 2**31); a field that names no bound takes the 32-bit range, which
        # console/api/schema.py publishes for every request body.
        value = whole(field, data)
        if field.max_value is None and value > INT32_MAX:
            field.fail("max_value", max_value=INT32_MAX)
        if field.min_value is None and value < -INT32_MAX - 1:
            field.fail("min_value", min_value=-INT32_MAX - 1)
        return value

    serializers.IntegerField.to_internal_value = integer_value
    serializers.CharField.to_internal_value = to_internal_value
    serializers.BooleanField.to_internal_value = boolean_value
    serializers.DecimalField.to_internal_value = decimal_value
    serializers.CharField._gatehouse_strict = True


class Conflict(APIException):
    """The request is well formed but the object's state does not allow it (a revoked key, ...)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's current state does not allow this."
    default_code = "conflict"


class DefaultPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500

    def get_limit(self, request) -> int:
        limit = strict_int(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request) -> int:
        offset = strict_int(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)
        return offset or 0

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            int_parameter(
                self.limit_query_param,
                f"Results per page (default {self.default_limit}).",
                minimum=1,
                maximum=self.max_limit,
            ),
            int_parameter(self.offset_query_param, "Results to skip.", minimum=0, maximum=MAX_OFFSET),
        ]


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

    def initial(self, request, *args, **kwargs) -> None:
        """After authentication: ids and query parameters with a NUL character name nothing and
        filter nothing (PostgreSQL refuses NUL in text; the schema publishes the rule)."""
        super().initial(request, *args, **kwargs)
        if any(NUL in str(value) for value in kwargs.values()):
            raise NotFound()
        if any(str(value).isdigit() and int(value) > INT64_MAX for value in kwargs.values()):
            raise NotFound()  # no row has such an id, and the database could not even compare it
        refused = {
            name: ["NUL characters are not accepted."]
            for name, values in request.query_params.lists()
            if any(NUL in value for value in values)
        }
        if refused:
            raise serializers.ValidationError(refused)

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
            pk = int(data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < pk <= INT64_MAX:
            self.fail("does_not_exist", model=self.model_name, pk_value=data)
        try:
            return self.get_queryset().get(pk=pk)
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


_JSON_TYPES = {OpenApiTypes.INT: "integer", OpenApiTypes.DECIMAL: "string", OpenApiTypes.BOOL: "boolean"}
_FORMATS = {
    OpenApiTypes.DATETIME: {"format": "date-time"},
    OpenApiTypes.DATE: {"format": "date"},
    OpenApiTypes.DECIMAL: {"format": "decimal"},
}


def form_parameters(form_class: type[forms.Form]) -> list[OpenApiParameter]:
    """OpenAPI query parameters derived from a filter form, so the schema and the
    filter can never disagree."""
    parameters = []
    for name, field in form_class.base_fields.items():
        kind = next((t for cls, t in _FORM_FIELD_TYPES if isinstance(field, cls)), OpenApiTypes.STR)
        enum = None
        if isinstance(field, forms.ChoiceField):
            enum = [value for value, _ in field.choices if value != ""]
        bounds = {}
        if getattr(field, "min_value", None) is not None:
            bounds["minimum"] = field.min_value
        if getattr(field, "max_value", None) is not None:
            bounds["maximum"] = field.max_value
        if getattr(field, "max_length", None) is not None:
            bounds["maxLength"] = field.max_length
        parameters.append(
            OpenApiParameter(
                name=name,
                type={"type": _JSON_TYPES.get(kind, "string"), **_FORMATS.get(kind, {}), **bounds} if bounds else kind,
                location=OpenApiParameter.QUERY,
                required=False,
                description=str(field.help_text or ""),
                enum=enum,
            )
        )
    return parameters
