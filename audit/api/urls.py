from rest_framework.routers import SimpleRouter

from audit.api.views import LedgerViewSet

router = SimpleRouter()
router.register("ledger", LedgerViewSet, basename="ledger")

urlpatterns = router.urls
