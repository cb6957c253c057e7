from django.urls import path

from budgets import budget_views, dead_letter_views, views
from budgets.finops import metrics_view, value_views
from budgets.finops import views as finops_views

app_name = "budgets"

urlpatterns = [
    path("usage/", views.usage_list_view, name="usage-list"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("finops/", finops_views.overview, name="finops-overview"),
    path("finops/spend/", finops_views.explorer, name="finops-explorer"),
    path("finops/unit-economics/", finops_views.unit_economics, name="finops-unit"),
    path("finops/performance/", finops_views.performance, name="finops-performance"),
    path("finops/outcomes/", value_views.outcomes, name="finops-outcomes"),
    path("finops/savings/", value_views.savings, name="finops-savings"),
    path("finops/on-prem/", value_views.onprem, name="finops-onprem"),
    path("budgets/", budget_views.budget_tree_view, name="budget-tree"),
    path("budgets/new/", budget_views.budget_create, name="budget-create"),
    path("budgets/limits/", budget_views.rate_limit_set, name="rate-limit-set"),
    path("budgets/limits/<int:pk>/delete/", budget_views.rate_limit_delete, name="rate-limit-delete"),
    path("budgets/alerts/", budget_views.alert_settings, name="alert-settings"),
    path("budgets/store-policy/", budget_views.store_policy, name="store-policy"),
    path("budgets/alerts/<int:pk>/dismiss/", budget_views.alert_dismiss, name="alert-dismiss"),
    path("budgets/<int:pk>/", budget_views.budget_history, name="budget-history"),
    path("budgets/<int:pk>/row/", budget_views.budget_row, name="budget-row"),
    path("budgets/<int:pk>/edit/", budget_views.budget_edit, name="budget-edit"),
    path("budgets/<int:pk>/archive/", budget_views.budget_archive, name="budget-archive"),
    path("usage/dead-letters/", dead_letter_views.dead_letter_list, name="dead-letter-list"),
    path("usage/dead-letters/<int:pk>/", dead_letter_views.dead_letter_detail, name="dead-letter-detail"),
    path("usage/dead-letters/<int:pk>/retry/", dead_letter_views.dead_letter_retry, name="dead-letter-retry"),
    path("usage/dead-letters/<int:pk>/discard/", dead_letter_views.dead_letter_discard, name="dead-letter-discard"),
    path("usage/<str:request_id>/", views.usage_detail, name="usage-detail"),
]
