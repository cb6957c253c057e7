from django.urls import path

from providers import views

app_name = "providers"

urlpatterns = [
    path("models/", views.model_registry, name="model-list"),
    path("models/new/", views.model_create, name="model-create"),
    path("models/<int:pk>/edit/", views.model_edit, name="model-edit"),
    path("models/<int:pk>/lifecycle/", views.model_lifecycle, name="model-lifecycle"),
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
]
