"""Role permissions for the management API.

Views declare which roles may read (`read_roles`, None: every member) and write
(`write_roles`, default owners and admins). What a role may see inside a resource
(a member sees only their own keys) is the view's queryset, always scoped to the
organization the request acts in.
"""

from __future__ import annotations

from rest_framework import permissions

from console.models import MANAGER_ROLES, TOKEN_ROLES_FOR, Membership, Role

# Role sets the views name.
MANAGERS = MANAGER_ROLES
SPEND_READERS = frozenset({Role.OWNER, Role.ADMIN, Role.FINANCE})
KEY_HOLDERS = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})


def api_membership(request) -> Membership | None:
    """The caller's membership in the organization the request acts in.

    An admin token is bound to one organization; a session user acts in the
    organization chosen in the console (or their first one), or the one named by
    the `X-Gatehouse-Organization` header (slug).
    """
    cached = getattr(request, "_gatehouse_membership", False)
    if cached is not False:
        return cached
    user = request.user
    membership = None
    if user is not None and user.is_authenticated:
        memberships = Membership.objects.filter(user=user).select_related("organization", "user")
        token_org = getattr(request._request, "gatehouse_token_org", None)
        slug = request.headers.get("x-gatehouse-organization")
        if token_org is not None:
            membership = memberships.filter(organization=token_org).first()
            token_role = getattr(request._request, "gatehouse_token_role", "")
            if membership is not None and token_role and token_role != membership.role:
                # The token acts with its own role, which was never more than its user's.
                membership = _with_role(membership, token_role)
        elif slug:
            membership = memberships.filter(organization__slug=slug).first()
        else:
            session_org = request.session.get("gatehouse_org_id") if hasattr(request, "session") else None
            if session_org is not None:
                membership = memberships.filter(organization_id=session_org).first()
            membership = membership or memberships.order_by("organization__name").first()
    request._gatehouse_membership = membership
    return membership


def _with_role(membership: Membership, role: str) -> Membership:
    """An unsaved copy of the membership acting with the token's role.

    The role was at most the user's when the token was issued; if the user has
    since lost that much, the token falls back to the least role (member).
    """
    if role not in TOKEN_ROLES_FOR.get(membership.role, ()):
        role = Role.MEMBER
    return Membership(id=membership.id, organization=membership.organization, user=membership.user, role=role)


class IsOrganizationMember(permissions.BasePermission):
    """Members read; owners and admins write; finance reads spend only (see views)."""

    message = "You are not a member of an organization that can do this."

    def has_permission(self, request, view) -> bool:
        membership = api_membership(request)
        if membership is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            allowed = getattr(view, "read_roles", None)
            return allowed is None or membership.role in allowed
        write_roles = getattr(view, "write_roles", MANAGER_ROLES)
        return membership.role in write_roles


__all__ = ["KEY_HOLDERS", "MANAGERS", "SPEND_READERS", "IsOrganizationMember", "Role", "api_membership"]


class ApiDocsAccess(permissions.BasePermission):
    """The schema and its docs: open on a development machine, for signed-in users and
    admin-token holders in production (`GATEHOUSE["API_DOCS_PUBLIC"]`, read per request)."""

    def has_permission(self, request, view) -> bool:
        from django.conf import settings

        if settings.GATEHOUSE.get("API_DOCS_PUBLIC", False):
            return True
        return bool(request.user and request.user.is_authenticated)
