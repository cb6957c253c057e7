from django.urls import path

from budgets import views

app_name = "budgets"

urlpatterns = [
    path("", views.usage_list_view, name="usage-list"),
    path("<str:request_id>/", views.usage_detail, name="usage-detail"),
]
