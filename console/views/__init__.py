"""Console views, one module per area; the URLconf imports them from here."""

from console.access import (  # noqa: F401 - the helpers other apps' views use
    HtmxHttpRequest,
    is_manager,
    manager_required,
    organization_required,
    render_page,
    role_required,
    wants_partial,
)
from console.views.keys import key_create, key_created, key_detail, key_list, key_revoke
from console.views.members import invitation_revoke, member_invite, member_list, member_remove, member_role
from console.views.shell import home, organization_switch
from console.views.teams import (
    team_delete,
    team_detail,
    team_edit,
    team_list,
    team_member_add,
    team_member_remove,
)
from console.views.tokens import token_created, token_list, token_revoke

__all__ = [
    "home",
    "organization_switch",
    "team_list",
    "team_detail",
    "team_edit",
    "team_delete",
    "team_member_add",
    "team_member_remove",
    "member_list",
    "member_invite",
    "member_role",
    "member_remove",
    "invitation_revoke",
    "key_list",
    "key_create",
    "key_created",
    "key_detail",
    "key_revoke",
    "token_list",
    "token_created",
    "token_revoke",
]
