from django.urls import path

from providers import facts_views, views, views_org

app_name = "providers"

urlpatterns = [
    path("models/", views.model_registry, name="model-list"),
    path("models/new/", views.model_create, name="model-create"),
    path("models/<int:pk>/edit/", views.model_edit, name="model-edit"),
    path("models/<int:pk>/lifecycle/", views.model_lifecycle, name="model-lifecycle"),
    path("models/<int:pk>/organization/", views_org.model_organization, name="model-organization"),
    path("providers/", views.provider_list, name="provider-list"),
    path("providers/new/", views.provider_create, name="provider-create"),
    path("providers/<int:pk>/", views.provider_detail, name="provider-detail"),
    path("providers/<int:pk>/edit/", views.provider_edit, name="provider-edit"),
    path("providers/<int:pk>/toggle/", views.provider_toggle, name="provider-toggle"),
    path("providers/<int:pk>/delete/", views.provider_delete, name="provider-delete"),
    path("providers/<int:pk>/deployments/new/", views.deployment_create, name="deployment-create"),
    path("deployments/", views.deployment_list, name="deployment-list"),
    path("deployments/<int:pk>/edit/", views.deployment_edit, name="deployment-edit"),
    path("deployments/<int:pk>/delete/", views.deployment_delete, name="deployment-delete"),
    path("models/<int:pk>/facts/", facts_views.model_facts, name="model-facts"),
    path("providers/<int:pk>/facts/", facts_views.provider_facts, name="provider-facts"),
    path("deployments/<int:pk>/facts/", facts_views.deployment_facts, name="deployment-facts"),
    path("certifications/", facts_views.certifications, name="certifications"),
]
