from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "budgets"
    # Budgets and rate limits in `export_config` / `apply_config`.
    config_sections = "budgets.config.config_sections"

    def ready(self) -> None:
        from budgets.alerts import organization_alert_deliver
        from gatehouse.signals import organization_alert

        # Other apps' alerts (the ledger's failed verifications) go out through our channels.
        organization_alert.connect(organization_alert_deliver, dispatch_uid="budgets-organization-alert")
