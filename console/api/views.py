"""Answers of the management API that belong to no resource."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt  # no state is read or changed: a POST to an unknown path is a 404, not a CSRF failure
def api_not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse | HttpResponsePermanentRedirect:
    """An unknown path under /api/ (or an id of the wrong shape) answers in the API's JSON error shape.

    A read of a known path without its trailing slash is still sent there, as Django's
    APPEND_SLASH did before this catch-all existed.
    """
    path = request.path_info
    if request.method in ("GET", "HEAD") and not path.endswith("/"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
    return JsonResponse({"detail": "Not found."}, status=404)
