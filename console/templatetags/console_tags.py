"""Formatting and navigation helpers for console templates."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from gatehouse.money import money_format

register = template.Library()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def usd(value, places: int = 2) -> str:
    """`Decimal("1234.5")|usd` -> "$1,234.50"; below a cent as many places as it takes ("$0.0042").

    The rule is `gatehouse.money.money_format`, the same for e-mails, alerts and the API.
    """
    try:
        places = int(places)
    except (TypeError, ValueError):
        places = 2
    return money_format(value, places)


@register.filter
def money(value) -> str:
    """The money rule with its default precision: `{{ amount|money }}`."""
    return money_format(value)


@register.filter
def price(value) -> str:
    """A unit price without trailing zeros: 0.150000 -> "$0.15", 3 -> "$3"."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    text = f"{amount.normalize():f}"
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0")
        if len(fraction) == 1:
            fraction += "0"
        text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    else:
        text = f"{int(text):,}"
    return f"${text}"


@register.filter
def status_class(status_code) -> str:
    """A badge class for an HTTP status code."""
    try:
        code = int(status_code)
    except (TypeError, ValueError):
        return "badge"
    if code < 400:
        return "badge badge-ok"
    if code in (401, 403, 404, 429):
        return "badge badge-warning"
    return "badge badge-error"


@register.filter
def number(value, places: int = 0) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):,.{int(places)}f}"
    except (TypeError, ValueError):
        return str(value)


@register.simple_tag(takes_context=True)
def nav_link(context, url_name: str, label: str, exact: bool = False) -> str:
    """A left-nav link, marked active when the current path lies under it."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    request = context.get("request")
    path = getattr(request, "path", "")
    active = path == url if exact else path.startswith(url)
    return format_html(
        '<a class="nav-link{}" href="{}"{}>{}</a>',
        " active" if active else "",
        url,
        ' aria-current="page"' if active else "",
        label,
    )


@register.filter
def get_item(mapping, key):
    """`{{ names|get_item:record.key_id }}` — a dict lookup by a variable key."""
    if not hasattr(mapping, "get"):
        return None
    return mapping.get(key)
