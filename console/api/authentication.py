"""Management API authentication by admin token (`Authorization: Bearer gha-...`)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions

from console.models import AdminToken
from console.services import ADMIN_TOKEN_PREFIX, secret_hash


class AdminTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.startswith(ADMIN_TOKEN_PREFIX):
            return None
        token = (
            AdminToken.objects.select_related("user", "organization")
            .filter(secret_hash=secret_hash(secret.strip()), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked admin token.")
        request._request.gatehouse_token_org = token.organization
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="gatehouse-api"'


class AdminTokenScheme(OpenApiAuthenticationExtension):
    """Describes admin-token authentication in the OpenAPI schema."""

    target_class = AdminTokenAuthentication
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        return {**scheme, "description": "An admin token (`gha-...`), acting as its user in its organization."}
