from django.urls import path
from rest_framework.routers import SimpleRouter

from budgets.api.budgets import AlertSettingsViewSet, BudgetAlertViewSet, BudgetViewSet, RateLimitViewSet
from budgets.api.chargeback import ChargebackView
from budgets.api.focus import FocusExportView
from budgets.api.outcomes import OutcomeCreateView
from budgets.api.views import UsageViewSet

router = SimpleRouter()
router.register("usage", UsageViewSet, basename="usage")
router.register("budgets", BudgetViewSet, basename="budget")
router.register("rate-limits", RateLimitViewSet, basename="rate-limit")
router.register("budget-alerts", BudgetAlertViewSet, basename="budget-alert")
router.register("budget-alert-settings", AlertSettingsViewSet, basename="budget-alert-settings")

urlpatterns = [
    path("outcomes", OutcomeCreateView.as_view(), name="outcomes"),
    path("focus", FocusExportView.as_view(), name="focus-export"),
    path("chargeback", ChargebackView.as_view(), name="chargeback"),
    *router.urls,
]
