from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path
from django.views.generic.base import RedirectView

from console import views
from console.signin import join, oidc
from console.signin import views as signin_views
from console.views import security

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    # Browsers ask for /favicon.ico on pages without a <link rel=icon> (API docs, admin).
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True), name="favicon"),
    path("login/", signin_views.SignInView.as_view(), name="login"),
    path("login/verify/", signin_views.login_verify, name="login-verify"),
    path("account/two-factor/", signin_views.two_factor, name="two-factor"),
    path("sso/start/", oidc.SsoStartView.as_view(), name="oidc-start"),
    path("sso/callback/", oidc.SsoCallbackView.as_view(), name="oidc-callback"),
    path("join/<str:token>/", join.invitation_join, name="invitation-accept"),
    path("settings/sign-in/", security.signin_settings, name="signin-settings"),
    path("settings/sign-in/mappings/<int:pk>/delete/", security.sso_mapping_delete, name="sso-mapping-delete"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organization/switch/", views.organization_switch, name="organization-switch"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<int:pk>/", views.team_detail, name="team-detail"),
    path("teams/<int:pk>/edit/", views.team_edit, name="team-edit"),
    path("teams/<int:pk>/delete/", views.team_delete, name="team-delete"),
    path("teams/<int:pk>/members/add/", views.team_member_add, name="team-member-add"),
    path("teams/<int:pk>/members/<int:user_id>/remove/", views.team_member_remove, name="team-member-remove"),
    path("users/", views.member_list, name="member-list"),
    path("users/new/", views.member_invite, name="member-invite"),
    path("users/<int:pk>/role/", views.member_role, name="member-role"),
    path("users/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("users/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("api-tokens/", views.token_list, name="token-list"),
    path("api-tokens/<int:pk>/created/", views.token_created, name="token-created"),
    path("api-tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("keys/", views.key_list, name="key-list"),
    path("keys/new/", views.key_create, name="key-create"),
    path("keys/<int:pk>/", views.key_detail, name="key-detail"),
    path("keys/<int:pk>/created/", views.key_created, name="key-created"),
    path("keys/<int:pk>/revoke/", views.key_revoke, name="key-revoke"),
]
