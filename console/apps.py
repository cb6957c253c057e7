from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "console"

    def ready(self) -> None:
        from console.api.base import strict_text_fields
        from console.signin import signals  # noqa: F401 - connects the lockout audit event

        strict_text_fields()
