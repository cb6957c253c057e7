"""The budget alert banner shown at the top of every console page, and money helpers."""

from __future__ import annotations

from django import template

from budgets.models import units_to_usd
from console.models import Role

register = template.Library()

BANNER_ROLES = {Role.OWNER, Role.ADMIN, Role.FINANCE}


@register.filter
def units_usd(value):
    """Counter units (1e-10 USD) as a Decimal amount."""
    return units_to_usd(int(value or 0))


@register.inclusion_tag("budgets/_alert_banner.html", takes_context=True)
def budget_alert_banner(context) -> dict:
    request = context.get("request")
    organization = getattr(request, "organization", None)
    membership = getattr(request, "membership", None)
    if organization is None or membership is None or membership.role not in BANNER_ROLES:
        return {"alerts": []}
    from budgets.selectors import alerts_active

    return {
        "alerts": alerts_active(organization_id=organization.id),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
