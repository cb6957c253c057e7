"""Sign-in settings, read by gatehouse.settings: login throttling and lockout (django-axes),
an optional TOTP second factor (django-otp) and OIDC single sign-on (mozilla-django-oidc,
endpoints by discovery). Environment variables are read here as in gatehouse.settings."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from gatehouse.env import env_float, env_int, env_str

SIGNIN_APPS = ["axes", "django_otp", "django_otp.plugins.otp_totp"]
SIGNIN_MIDDLEWARE = ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out accounts and addresses
    "console.signin.backends.PasswordBackend",
    "console.signin.oidc.SsoBackend",
]
AXES_FAILURE_LIMIT = env_int("GATEHOUSE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("GATEHOUSE_LOGIN_LOCKOUT_MINUTES", 15.0) / 60.0  # hours
# Either the account or the client address reaching the limit locks (each counted on its own).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "console.signin.views.lockout_response"
AXES_CLIENT_IP_CALLABLE = "console.signin.backends.client_ip"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = env_str("GATEHOUSE_TOTP_ISSUER", "Gatehouse")
GATEHOUSE_SIGNIN = {
    # Where the one-time invitation links point (else the host of the request that made them).
    "BASE_URL": env_str("GATEHOUSE_BASE_URL", ""),
    "INVITATION_DAYS": env_int("GATEHOUSE_INVITATION_DAYS", 7),
    # OIDC single sign-on: on when an issuer (or discovery URL) and a client id are set.
    "OIDC_ISSUER": env_str("GATEHOUSE_OIDC_ISSUER", ""),
    "OIDC_DISCOVERY_URL": env_str("GATEHOUSE_OIDC_DISCOVERY_URL", ""),
    "OIDC_CLIENT_ID": env_str("GATEHOUSE_OIDC_CLIENT_ID", ""),
    "OIDC_CLIENT_SECRET": env_str("GATEHOUSE_OIDC_CLIENT_SECRET", ""),
    "OIDC_GROUPS_CLAIM": env_str("GATEHOUSE_OIDC_GROUPS_CLAIM", "groups"),
    "OIDC_SCOPES": env_str("GATEHOUSE_OIDC_SCOPES", "openid email profile"),
    "OIDC_SIGN_ALGO": env_str("GATEHOUSE_OIDC_SIGN_ALGO", "RS256"),
    "OIDC_BUTTON_LABEL": env_str("GATEHOUSE_OIDC_BUTTON_LABEL", "Sign in with single sign-on"),
}
if bool(GATEHOUSE_SIGNIN["OIDC_ISSUER"] or GATEHOUSE_SIGNIN["OIDC_DISCOVERY_URL"]) != bool(
    GATEHOUSE_SIGNIN["OIDC_CLIENT_ID"]
):
    raise ImproperlyConfigured(
        "Single sign-on needs both GATEHOUSE_OIDC_ISSUER (or GATEHOUSE_OIDC_DISCOVERY_URL) "
        "and GATEHOUSE_OIDC_CLIENT_ID."
    )
OIDC_AUTHENTICATION_CALLBACK_URL = "console:oidc-callback"
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = False
AXES_DISABLE_ACCESS_LOG = True  # successes are not stored; failures and lockouts are (and audited)
