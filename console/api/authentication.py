"""Management API authentication by admin token (`Authorization: Bearer gha-...`)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import authentication, exceptions

from console.models import AdminToken
from console.services import ADMIN_TOKEN_PREFIX, secret_hash

LAST_USED_EVERY = timedelta(minutes=1)


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
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This admin token has expired; issue a new one.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
            # At most one write a minute per token: enough to see which tokens are still in use.
            AdminToken.objects.filter(pk=token.pk).update(last_used_at=now)
        request._request.gatehouse_token_org = token.organization
        request._request.gatehouse_token_role = token.role
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="gatehouse-api"'


class AdminTokenScheme(OpenApiAuthenticationExtension):
    """Describes admin-token authentication in the OpenAPI schema."""

    target_class = AdminTokenAuthentication
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        return {
            **scheme,
            "description": (
                "Every request to `/api/v1/` sends an API token in the header "
                "`Authorization: Bearer gha-...`. Issue one on the console's **API tokens** page "
                "(role and expiry; shown once) or with `manage.py create_token --org <slug> --user <name>`. "
                "The token acts as its user in its organization, with the token's role. "
                "Virtual keys (`sk-gh-...`) are for the `/v1` model endpoints, not for this API."
            ),
        }
