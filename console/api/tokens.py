"""Admin tokens for the management API; each acts as its creator in this organization."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from console import services
from console.api.base import ScopedViewSet
from console.api.permissions import MANAGERS
from console.models import AdminToken, Role


class TokenOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    user = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = AdminToken
        fields = ["id", "name", "prefix", "status", "user", "role", "expires_at", "revoked_at", "created_at"]
        read_only_fields = fields

    def get_status(self, token: AdminToken) -> str:
        return token.status


class IssuedTokenOutput(TokenOutput):
    secret = serializers.CharField(read_only=True, help_text="Shown once: send it as `Authorization: Bearer <secret>`.")

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "secret"]
        read_only_fields = fields


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    role = serializers.ChoiceField(
        choices=Role.choices, required=False, help_text="The role the token acts with; at most your own (default)."
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Default: never.")


@extend_schema(tags=["tokens"])
class TokenViewSet(ScopedViewSet):
    """Admin tokens for this API (owners and admins); secrets are shown once."""

    queryset = AdminToken.objects.none()
    serializer_class = TokenOutput  # the representation (browsable API, OPTIONS)
    read_roles = MANAGERS
    write_roles = MANAGERS

    def get_queryset(self) -> QuerySet[AdminToken]:
        if self.schema_only:
            return AdminToken.objects.none()
        return AdminToken.objects.filter(organization=self.organization).order_by("-created_at", "-id")

    @extend_schema(responses=TokenOutput(many=True))
    def list(self, request):
        return self.render_list(TokenOutput, self.get_queryset())

    @extend_schema(responses=TokenOutput)
    def retrieve(self, request, pk=None):
        return self.render(TokenOutput, self.get_object())

    @extend_schema(
        request=TokenCreateInput, responses={201: IssuedTokenOutput}, summary="Issue a token for yourself (shown once)"
    )
    def create(self, request):
        data = self.validated(TokenCreateInput)
        issued = services.admin_token_create(
            organization=self.organization,
            user=request.user,
            name=data["name"],
            role=data.get("role", ""),
            expires_at=data.get("expires_at"),
        )
        body = TokenOutput(issued.token, context=self.get_serializer_context()).data
        return Response({**body, "secret": issued.secret}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TokenOutput, summary="Revoke a token", operation_id="tokens_revoke")
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.admin_token_revoke(token=self.get_object(), actor=request.user)
        return self.render(TokenOutput, token)
