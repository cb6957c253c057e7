from django.urls import path

from routing.console import policy, routes, tools

app_name = "routing"

urlpatterns = [
    path("", routes.route_list, name="route-list"),
    path("routes/edit/", routes.route_edit, name="route-edit"),
    path("routes/delete/", routes.route_delete, name="route-delete"),
    path("rules/", routes.rule_list, name="rule-list"),
    path("rules/edit/", routes.rule_edit, name="rule-edit"),
    path("rules/move/", routes.rule_move, name="rule-move"),
    path("rules/delete/", routes.rule_delete, name="rule-delete"),
    path("matrix/", policy.matrix, name="matrix"),
    path("matrix/toggle/", policy.matrix_toggle, name="matrix-toggle"),
    path("matrix/unlist/", policy.matrix_unlist, name="matrix-unlist"),
    path("matrix/requirements/", policy.requirements_edit, name="requirements"),
    path("settings/", policy.settings_edit, name="settings"),
    path("history/", policy.history, name="history"),
    path("history/<int:number>/", policy.version_detail, name="version-detail"),
    path("history/<int:number>/decide/", policy.version_decide, name="version-decide"),
    path("history/<int:number>/rollback/", policy.version_rollback, name="version-rollback"),
    path("dry-run/", tools.dry_run, name="dry-run"),
    path("health/", tools.health, name="health"),
    path("health/<int:pk>/breaker/", tools.breaker_edit, name="breaker-edit"),
]
