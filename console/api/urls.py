"""The management API, mounted at /api/v1/ (names: `api:<resource>-list`, `api:<resource>-detail`)."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from console.api.invitations import InvitationViewSet
from console.api.keys import KeyViewSet
from console.api.members import MemberViewSet
from console.api.organizations import OrganizationViewSet
from console.api.teams import TeamViewSet
from console.api.tokens import TokenViewSet

app_name = "api"

router = SimpleRouter()
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("teams", TeamViewSet, basename="team")
router.register("members", MemberViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("keys", KeyViewSet, basename="key")
router.register("tokens", TokenViewSet, basename="token")

urlpatterns = [
    *router.urls,
    path("", include("providers.api.urls")),
    path("", include("budgets.api.urls")),
    path("", include("audit.api.urls")),
]
