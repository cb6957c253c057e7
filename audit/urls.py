from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.integrity, name="integrity"),
    path("verify/", views.verify_now, name="verify-now"),
    path("verifications/<int:pk>/", views.verification_status, name="verification"),
    path("lookup/", views.lookup, name="lookup"),
    path("export/", views.export, name="export"),
    path("trail/", views.trail, name="trail"),
]
