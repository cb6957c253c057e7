"""`POST /api/v1/outcomes`: record what a request or a workflow achieved.

Authenticated by a virtual key (`Authorization: Bearer sk-gh-...`, the app that made
the requests) or by an admin token (`gha-...`) of an owner, admin or finance user.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.finops.outcomes import OutcomeError, outcome_record
from console.api.authentication import AdminTokenAuthentication
from console.api.permissions import SPEND_READERS, api_membership
from console.keycache import key_context_load
from console.services import KEY_PREFIX, secret_hash


class VirtualKeyPrincipal:
    """A virtual key acting as the caller: not a user, scoped to its organization and itself."""

    is_authenticated = True

    def __init__(self, context) -> None:
        self.context = context


class VirtualKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(KEY_PREFIX):
            return None
        context = key_context_load(secret_hash(secret))
        if context is None or context.revoked or context.expired(timezone.now().timestamp()):
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired key.")
        return VirtualKeyPrincipal(context), context

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="gatehouse-api"'


class KeyOrSpendReader(BasePermission):
    message = "A virtual key, or an admin token of an owner, admin or finance user, is needed."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, VirtualKeyPrincipal):
            return True
        membership = api_membership(request)
        return membership is not None and membership.role in SPEND_READERS


class OutcomeInput(serializers.Serializer):
    request_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    workflow = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    name = serializers.CharField(max_length=200)
    value = serializers.DecimalField(max_digits=20, decimal_places=10, required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if not attrs.get("request_id") and not attrs.get("workflow"):
            raise serializers.ValidationError("Give a request_id or a workflow.")
        return attrs


class OutcomeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    request_id = serializers.CharField()
    workflow = serializers.CharField()
    name = serializers.CharField()
    value = serializers.DecimalField(max_digits=20, decimal_places=10, allow_null=True)
    created_at = serializers.DateTimeField()


class OutcomeCreateView(APIView):
    authentication_classes = [VirtualKeyAuthentication, AdminTokenAuthentication]
    permission_classes = [KeyOrSpendReader]
    serializer_class = OutcomeInput

    @extend_schema(request=OutcomeInput, responses={201: OutcomeOutput})
    def post(self, request):
        data = OutcomeInput(data=request.data)
        data.is_valid(raise_exception=True)
        if isinstance(request.user, VirtualKeyPrincipal):
            context = request.user.context
            organization_id, key_id, key_ids = context.organization_id, context.key_id, (context.key_id,)
        else:
            organization_id, key_id, key_ids = api_membership(request).organization_id, None, None
        try:
            outcome = outcome_record(
                organization_id=organization_id, key_id=key_id, key_ids=key_ids, **data.validated_data
            )
        except OutcomeError as error:
            raise serializers.ValidationError({"detail": str(error)}) from error
        return Response(OutcomeOutput(outcome).data, status=status.HTTP_201_CREATED)


class VirtualKeyScheme(OpenApiAuthenticationExtension):
    """Describes virtual-key authentication of the outcomes endpoint in the OpenAPI schema."""

    target_class = VirtualKeyAuthentication
    name = "virtualKey"

    def get_security_definition(self, auto_schema):
        return {
            **build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer"),
            "description": "A virtual key (`Authorization: Bearer sk-gh-...`), as the `/v1` endpoints take.",
        }
