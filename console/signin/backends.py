"""Password sign-in: refused for members of organizations that require single sign-on."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from django.conf import settings
from django.contrib.auth.backends import ModelBackend

from console.signin.policy import sso_required_for

SSO_REQUIRED_FLAG = "gatehouse_sso_required"


class PasswordBackend(ModelBackend):
    """Django's username and password check, minus accounts their organization keeps on SSO.

    A refused account is marked on the request so the login page can say why."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and sso_required_for(user):
            if request is not None:
                setattr(request, SSO_REQUIRED_FLAG, True)
            return None
        return user


def client_ip(request) -> str | None:
    """The client address the lockout counts, or None when the request has none that parses
    (a test client's login, a Unix socket): lockout rows keep addresses in an address column,
    which PostgreSQL checks.

    The same rule as the gateway's failed-key limit (routing.pipeline.authenticate, which
    the console may not import): X-Forwarded-For is read from the right, skipping trusted
    proxies, and only when the peer itself is a trusted proxy."""
    networks = [ip_network(item, strict=False) for item in settings.GATEHOUSE["TRUSTED_PROXIES"]]

    def parsed(address: str):
        try:
            return ip_address(address)
        except ValueError:
            return None

    def trusted(address: str) -> bool:
        ip = parsed(address)
        return ip is not None and any(ip in network for network in networks)

    client = (getattr(request, "META", None) or {}).get("REMOTE_ADDR") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if client else ""
    if networks and trusted(client) and forwarded:
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            if parsed(hop) is None:
                break  # a hop that is no address: count the last proxy that handed it on
            client = hop
            if not trusted(hop):
                break
    return str(parsed(client)) if parsed(client) is not None else None
