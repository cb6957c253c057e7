from rest_framework.routers import SimpleRouter

from providers.api.facts import CertificationViewSet, DeploymentFactsViewSet, ProviderFactsViewSet
from providers.api.org_views import ModelSettingViewSet
from providers.api.views import DeploymentViewSet, ModelViewSet, ProviderViewSet

router = SimpleRouter()
router.register("model-settings", ModelSettingViewSet, basename="model-setting")
router.register("models", ModelViewSet, basename="model")
router.register("providers", ProviderViewSet, basename="provider")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("provider-facts", ProviderFactsViewSet, basename="provider-facts")
router.register("deployment-facts", DeploymentFactsViewSet, basename="deployment-facts")
router.register("certifications", CertificationViewSet, basename="certification")

urlpatterns = router.urls
