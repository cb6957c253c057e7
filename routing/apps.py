from django.apps import AppConfig


class RoutingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "routing"
    config_sections = "routing.config.config_sections"

    def ready(self) -> None:
        from gatehouse.signals import route_models

        # The routing-savings page (budgets) asks which models each route can reach.
        route_models.connect(_route_models, dispatch_uid="routing-route-models")


def _route_models(sender, *, organization_id: int, **kwargs) -> dict[str, list[str]]:
    from routing.selectors import route_reachable_models

    return route_reachable_models(organization_id=organization_id)
