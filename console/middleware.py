"""Which organization a console request acts in."""

from __future__ import annotations

from console.models import Membership

SESSION_KEY = "gatehouse_org_id"


class OrganizationMiddleware:
    """Sets `request.membership` / `request.organization` for signed-in users.

    The organization comes from the session (the switcher) and falls back to the
    user's first membership; a user with no membership has neither.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.organization = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            memberships = Membership.objects.filter(user=user).select_related("organization")
            wanted = request.session.get(SESSION_KEY)
            chosen = None
            if wanted is not None:
                chosen = memberships.filter(organization_id=wanted).first()
            if chosen is None:
                chosen = memberships.order_by("organization__name").first()
            if chosen is not None:
                request.membership = chosen
                request.organization = chosen.organization
        return self.get_response(request)
