"""OIDC single sign-on with any standards-compliant identity provider (mozilla-django-oidc).

The provider's endpoints come from its discovery document (`<issuer>/.well-known/
openid-configuration`), fetched when first needed and cached for an hour, so only the
issuer, the client id and secret and the name of the groups claim are configured. Users
are matched by (issuer, subject) and created on their first sign-in; their groups claim
decides their organizations and roles through each organization's group mapping.
Nothing is capped: every user the provider vouches for may sign in.
"""

from __future__ import annotations

import logging
import re

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.events import audit_record
from console.models import SsoIdentity
from console.signin.policy import memberships_sync

logger = logging.getLogger(__name__)

DISCOVERY_TTL = 3600
SIGNIN_METHOD_KEY = "gatehouse_signin_method"
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


def sso_enabled() -> bool:
    conf = settings.GATEHOUSE_SIGNIN
    return bool((conf["OIDC_ISSUER"] or conf["OIDC_DISCOVERY_URL"]) and conf["OIDC_CLIENT_ID"])


def discovery_url() -> str:
    conf = settings.GATEHOUSE_SIGNIN
    if conf["OIDC_DISCOVERY_URL"]:
        return conf["OIDC_DISCOVERY_URL"]
    return conf["OIDC_ISSUER"].rstrip("/") + "/.well-known/openid-configuration"


def provider_metadata() -> dict:
    """The provider's discovery document (cached)."""
    url = discovery_url()
    key = f"gatehouse:oidc:discovery:{url}"
    metadata = cache.get(key)
    if metadata is None:
        try:
            response = requests.get(url, timeout=10)
            response.raise_for_status()
            metadata = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise ImproperlyConfigured(f"The OIDC discovery document at {url} cannot be read: {exc}") from exc
        for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not metadata.get(field):
                raise ImproperlyConfigured(f"The OIDC discovery document at {url} has no {field}.")
        cache.set(key, metadata, DISCOVERY_TTL)
    return metadata


def _setting(attr: str, *args):
    """mozilla-django-oidc's settings, with ours (GATEHOUSE_SIGNIN) where they overlap."""
    conf = settings.GATEHOUSE_SIGNIN
    ours = {
        "OIDC_RP_CLIENT_ID": conf["OIDC_CLIENT_ID"],
        "OIDC_RP_CLIENT_SECRET": conf["OIDC_CLIENT_SECRET"],
        "OIDC_RP_SCOPES": conf["OIDC_SCOPES"],
        "OIDC_RP_SIGN_ALGO": conf["OIDC_SIGN_ALGO"],
    }
    if attr in ours:
        return ours[attr]
    return import_from_settings(attr, *args)


def _groups(claims: dict) -> list[str]:
    value = claims.get(settings.GATEHOUSE_SIGNIN["OIDC_GROUPS_CLAIM"]) or []
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    return [str(group).strip() for group in value if str(group).strip()]


def _pin_base_url(request) -> None:
    """Build the redirect URI from GATEHOUSE_BASE_URL when set (behind a TLS-terminating proxy
    the request alone says http://), for this one request only."""
    base = settings.GATEHOUSE_SIGNIN["BASE_URL"].rstrip("/")
    if base:
        request.build_absolute_uri = lambda location=None: base + (location or request.get_full_path())


class SsoBackend(OIDCAuthenticationBackend):
    """Signs in the user the provider vouches for (authorization code flow with PKCE)."""

    get_settings = staticmethod(_setting)

    def __init__(self, *args, **kwargs) -> None:
        # Built for every authenticate() call, password logins included: no network here.
        self.UserModel = get_user_model()

    def _configure(self) -> None:
        metadata = provider_metadata()
        self.issuer = metadata["issuer"]
        self.OIDC_OP_TOKEN_ENDPOINT = metadata["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = metadata.get("userinfo_endpoint", "")
        self.OIDC_OP_JWKS_ENDPOINT = metadata["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = _setting("OIDC_RP_CLIENT_ID")
        self.OIDC_RP_CLIENT_SECRET = _setting("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_SIGN_ALGO = _setting("OIDC_RP_SIGN_ALGO")
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **kwargs):
        if request is None or not sso_enabled() or "code" not in request.GET or "state" not in request.GET:
            return None
        try:
            self._configure()
            return super().authenticate(request, **kwargs)
        except (ImproperlyConfigured, requests.RequestException, ValueError) as exc:
            # The provider is down or answered nonsense: the sign-in fails, the page does not.
            logger.warning("single sign-on failed: %s", exc)
            return None

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint when the provider has one."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if info.get("sub", claims.get("sub")) != claims.get("sub"):
                return {}  # a userinfo answer about someone else is ignored entirely
            claims.update(info)
        return claims

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        # By subject, never by e-mail: an address is not proof of owning an existing account.
        return self.UserModel.objects.filter(sso_identity__issuer=self.issuer, sso_identity__subject=str(claims["sub"]))

    def _username(self, claims: dict) -> str:
        base = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0] or "sso-user"
        base = _USERNAME_UNSAFE.sub("-", str(base))[:140] or "sso-user"
        candidate, n = base, 1
        while self.UserModel.objects.filter(username=candidate).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def create_user(self, claims):
        user = self.UserModel(
            username=self._username(claims),
            email=claims.get("email") or "",
            first_name=(claims.get("given_name") or "")[:150],
            last_name=(claims.get("family_name") or "")[:150],
        )
        user.set_unusable_password()
        user.save()
        identity = SsoIdentity.objects.create(user=user, issuer=self.issuer, subject=str(claims["sub"]))
        audit_record(action="sso.user_create", actor=user.get_username(), target=user.get_username())
        memberships_sync(user=user, identity=identity, groups=_groups(claims))
        return user

    def update_user(self, user, claims):
        changed = []
        for field, claim in (("email", "email"), ("first_name", "given_name"), ("last_name", "family_name")):
            value = (claims.get(claim) or "")[:150]
            if value and getattr(user, field) != value:
                setattr(user, field, value)
                changed.append(field)
        if changed:
            user.save(update_fields=changed)
        memberships_sync(user=user, identity=user.sso_identity, groups=_groups(claims))
        return user


class SsoStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the identity provider."""

    get_settings = staticmethod(_setting)

    def __init__(self, *args, **kwargs) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        _pin_base_url(request)
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_metadata()["authorization_endpoint"]
        except ImproperlyConfigured as exc:
            logger.warning("single sign-on cannot start: %s", exc)
            return HttpResponseRedirect(reverse("console:login") + "?sso=failed")
        self.OIDC_RP_CLIENT_ID = _setting("OIDC_RP_CLIENT_ID")
        return super().get(request)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; signs the user in or back to the login page."""

    get_settings = staticmethod(_setting)

    def get(self, request):
        _pin_base_url(request)
        return super().get(request)

    @property
    def failure_url(self) -> str:
        return reverse("console:login") + "?sso=failed"

    def login_failure(self):
        audit_record(action="login.sso_failed", target=self.request.GET.get("error", "")[:100])
        return HttpResponseRedirect(self.failure_url)

    def login_success(self):
        response = super().login_success()
        self.request.session[SIGNIN_METHOD_KEY] = "sso"
        audit_record(action="login.sso", actor=self.user.get_username(), target=self.user.get_username())
        return response
