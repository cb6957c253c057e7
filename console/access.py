"""Who may see and do what in the console; shared by every app's console views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

from console.models import Membership, Organization, Role


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    organization: Organization | None
    membership: Membership | None


# ---- access ------------------------------------------------------------------


def organization_required(view: Callable) -> Callable:
    """Signed in and acting in an organization; otherwise a friendly page."""

    @login_required
    @wraps(view)
    def wrapped(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
        if request.organization is None:
            return render(request, "console/no_organization.html")
        return view(request, *args, **kwargs)

    return wrapped


def role_required(*roles: str) -> Callable[[Callable], Callable]:
    """Only these roles may use the view; everyone else gets 403."""

    def decorator(view: Callable) -> Callable:
        @organization_required
        @wraps(view)
        def wrapped(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            if request.membership.role not in roles:
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


manager_required = role_required(Role.OWNER, Role.ADMIN)


def is_manager(request: HtmxHttpRequest) -> bool:
    return request.membership is not None and request.membership.can_manage


def wants_partial(request: HtmxHttpRequest) -> bool:
    """An htmx swap asks for a fragment; a history restore after a cache miss needs the page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_page(request: HtmxHttpRequest, template: str, partial: str, context: dict) -> HttpResponse:
    """The page, or only its `partial` for an htmx swap (one template, `page.html#partial`)."""
    response = render(request, f"{template}#{partial}" if wants_partial(request) else template, context)
    patch_vary_headers(response, ("HX-Request",))
    return response
