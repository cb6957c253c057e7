from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "budgets"
    # Budgets and rate limits in `export_config` / `apply_config`.
    config_sections = "budgets.config.config_sections"
