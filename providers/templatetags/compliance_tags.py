"""`{% compliance_panel deployments %}`: the compliance facts in force of the deployments the
current organization sees (one deployment or several), with the latest changes of their facts."""

from __future__ import annotations

from typing import Any

from django import template

from providers.facts_services import facts_panel
from providers.models import Deployment
from providers.selectors import deployment_list_for

register = template.Library()


@register.inclusion_tag("providers/_facts_panel.html", takes_context=True)
def compliance_panel(context: dict[str, Any], deployments: Any, title: str = "Compliance facts") -> dict[str, Any]:
    organization = getattr(context.get("request"), "organization", None)
    if organization is None:
        return {"title": title, "rows": [], "history": []}
    ids = [deployments.pk] if isinstance(deployments, Deployment) else [d.pk for d in deployments]
    visible = list(deployment_list_for(organization=organization).filter(pk__in=ids))
    return {"title": title, **facts_panel(visible)}
