from django.urls import path

from guardrails import views

app_name = "guardrails"

urlpatterns = [
    path("", views.policy_edit, name="policy"),
    path("layers/<int:pk>/delete/", views.policy_delete, name="policy-delete"),
    path("recognizers/", views.recognizer_list, name="recognizers"),
    path("recognizers/<int:pk>/delete/", views.recognizer_delete, name="recognizer-delete"),
    path("reviews/", views.review_list, name="reviews"),
    path("reviews/<int:pk>/", views.review_detail, name="review-detail"),
    path("test/", views.test_prompt, name="test"),
]
