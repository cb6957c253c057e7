"""Virtual API keys.

A secret is returned exactly once: in the response that creates or rotates the
key. Owners and admins manage every key of the organization; members see and
manage only keys issued to themselves, on teams they belong to.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from console import services
from console.api.base import Conflict, OrganizationRelatedField, ScopedViewSet
from console.api.permissions import KEY_HOLDERS
from console.api.teams import org_users
from console.models import ApiKey, DataClass, Organization, Role, Team
from providers.facade import models_known


def org_teams(organization: Organization) -> QuerySet[Team]:
    return Team.objects.filter(organization=organization)


class KeyOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=["active", "revoked", "expired"], read_only=True)
    team = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    user = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    created_by = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "team",
            "user",
            "created_by",
            "allowed_models",
            "data_classification",
            "app_name",
            "tags",
            "metadata",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_at",
        ]
        read_only_fields = fields


class IssuedKeyOutput(KeyOutput):
    secret = serializers.CharField(read_only=True, help_text="Shown once; only its SHA-256 hash is stored.")

    class Meta(KeyOutput.Meta):
        fields = [*KeyOutput.Meta.fields, "secret"]
        read_only_fields = fields


class KeyFieldsInput(serializers.Serializer):
    """The settings a key can be created with and changed to."""

    name = serializers.CharField(max_length=200)
    team = OrganizationRelatedField(scope=org_teams, model_name="team", required=False, allow_null=True)
    allowed_models = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, help_text="Model names; empty means every model."
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    data_classification = serializers.ChoiceField(choices=DataClass.choices, required=False)
    app_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    metadata = serializers.DictField(required=False)

    def validate_allowed_models(self, names: list[str]) -> list[str]:
        wanted = sorted(set(names))
        organization = self.context.get("organization")
        known = models_known(wanted, organization_id=organization.id if organization else None)
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown models: {', '.join(unknown)}.")
        return wanted

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry lies in the past.")
        return value

    def validate_team(self, team: Team | None) -> Team | None:
        membership = self.context["membership"]
        if team is None or membership.role != Role.MEMBER:
            return team
        if not team.members.filter(pk=membership.user_id).exists():
            raise serializers.ValidationError("Members can only use teams they belong to.")
        return team


class KeyCreateInput(KeyFieldsInput):
    user = OrganizationRelatedField(
        scope=org_users,
        model_name="user",
        required=False,
        allow_null=True,
        help_text="Who the key is for; a member's keys are always their own.",
    )


class KeyUpdateInput(KeyFieldsInput):
    name = serializers.CharField(max_length=200, required=False)


@extend_schema(tags=["keys"])
class KeyViewSet(ScopedViewSet):
    """Virtual keys for `/v1`. Members see and manage only their own; secrets are shown once."""

    queryset = ApiKey.objects.none()
    serializer_class = KeyOutput  # the representation (browsable API, OPTIONS)
    read_roles = KEY_HOLDERS
    write_roles = KEY_HOLDERS

    def get_queryset(self) -> QuerySet[ApiKey]:
        if self.schema_only:
            return ApiKey.objects.none()
        keys = ApiKey.objects.filter(organization=self.organization)
        if self.membership.role == Role.MEMBER:
            keys = keys.filter(user=self.request.user)
        return keys.order_by("-created_at", "-id")

    def _require_open(self, key: ApiKey) -> None:
        if key.status != "active":
            raise Conflict(f"The key is {key.status}; issue a new one.")

    @extend_schema(responses=KeyOutput(many=True))
    def list(self, request):
        return self.render_list(KeyOutput, self.get_queryset())

    @extend_schema(responses=KeyOutput)
    def retrieve(self, request, pk=None):
        return self.render(KeyOutput, self.get_object())

    @extend_schema(request=KeyCreateInput, responses={201: IssuedKeyOutput}, summary="Issue a key (secret shown once)")
    def create(self, request):
        data = self.validated(KeyCreateInput)
        if self.membership.role == Role.MEMBER:
            if data.get("user") not in (None, request.user):
                raise PermissionDenied("Members can only create keys for themselves.")
            data["user"] = request.user
        issued = services.api_key_create(organization=self.organization, actor=request.user, **data)
        return self._issued(issued)

    @extend_schema(request=KeyUpdateInput, responses=KeyOutput)
    def partial_update(self, request, pk=None):
        key = self.get_object()
        self._require_open(key)
        data = self.validated(KeyUpdateInput, partial=True)
        if "name" in data:
            data["name"] = data["name"].strip()
            if not data["name"]:
                raise serializers.ValidationError({"name": "A key needs a name."})
        if data:
            services.api_key_update(key=key, actor=request.user, **data)
        return self.render(KeyOutput, self.get_object())

    @extend_schema(
        request=None,
        responses=KeyOutput,
        summary="Revoke a key (takes effect on every gateway host)",
        operation_id="keys_revoke",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = services.api_key_revoke(key=self.get_object(), actor=request.user)
        return self.render(KeyOutput, key)

    @extend_schema(
        request=None,
        responses={201: IssuedKeyOutput},
        summary="Replace the secret: a new key, the old one revoked",
        operation_id="keys_rotate",
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        key = self.get_object()
        self._require_open(key)
        return self._issued(services.api_key_rotate(key=key, actor=request.user))

    def _issued(self, issued: services.IssuedKey) -> Response:
        data = KeyOutput(issued.key, context=self.get_serializer_context()).data
        return Response({**data, "secret": issued.secret}, status=status.HTTP_201_CREATED)
