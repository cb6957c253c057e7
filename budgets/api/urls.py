from rest_framework.routers import SimpleRouter

from budgets.api.views import UsageViewSet

router = SimpleRouter()
router.register("usage", UsageViewSet, basename="usage")

urlpatterns = router.urls
