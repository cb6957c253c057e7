from django.urls import path

from . import views

app_name = "evals"

urlpatterns = [
    path("", views.suite_list, name="suite-list"),
    path("import/", views.suite_import, name="suite-import"),
    path("starter/", views.starter_install, name="starter-install"),
    path("suites/<int:pk>/", views.suite_detail, name="suite-detail"),
    path("suites/<int:pk>/edit/", views.suite_edit, name="suite-edit"),
    path("suites/<int:pk>/delete/", views.suite_delete, name="suite-delete"),
    path("suites/<int:pk>/cases/", views.case_add, name="case-add"),
    path("suites/<int:pk>/cases/<int:case_pk>/delete/", views.case_delete, name="case-delete"),
    path("suites/<int:pk>/export.<str:fmt>", views.suite_export, name="suite-export"),
    path("suites/<int:pk>/recommend/", views.suite_recommend, name="suite-recommend"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/diff/", views.run_diff, name="run-diff"),
    path("models/<path:name>/", views.model_detail, name="model-detail"),
]
