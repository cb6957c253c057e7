from __future__ import annotations

from console.models import Membership


def console(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_membership": getattr(request, "membership", None),
        "current_organization": getattr(request, "organization", None),
        "my_memberships": Membership.objects.filter(user=user).select_related("organization"),
    }
