from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audit.api.views import well_known_keys
from console.api.views import api_not_found
from routing import views as gateway

v1 = [
    path("chat/completions", gateway.ChatCompletionsView.as_view(), name="chat-completions"),
    path("embeddings", gateway.EmbeddingsView.as_view(), name="embeddings"),
    path("models", gateway.ModelsView.as_view(), name="models"),
    path("models/<path:model>", gateway.ModelDetailView.as_view(), name="model-detail"),
    re_path(r"^(?P<path>.*)$", gateway.not_found),
]

urlpatterns = [
    path("v1/", include((v1, "v1"))),
    path("api/v1/", include("console.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_not_found),
    path(".well-known/gatehouse-ledger-keys.json", well_known_keys, name="ledger-keys"),
    path("admin/", admin.site.urls),
    path("integrity/", include("audit.urls")),
    path("registry/", include("providers.urls")),
    path("", include("budgets.urls")),
    path("routing/", include("routing.urls")),
    path("guardrails/", include("guardrails.urls")),
    path("workspace/", include("workspace.urls")),
    path("evals/", include("evals.urls")),
    path("", include("console.urls")),
]
