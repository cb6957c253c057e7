from rest_framework.routers import SimpleRouter

from providers.api.views import DeploymentViewSet, ModelViewSet, ProviderViewSet

router = SimpleRouter()
router.register("models", ModelViewSet, basename="model")
router.register("providers", ProviderViewSet, basename="provider")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = router.urls
