"""Money and number formatting of the FinOps pages, in one place (to become the shared formatter).

A sub-cent amount keeps enough digits to read ($0.0004, $0.00000123), never '$0.00'
unless it is zero, and never scientific notation ('0E-10').
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

from gatehouse.money import money_format

register = template.Library()
ONE_DOLLAR = Decimal(1)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def money_text(value, significant: int = 2) -> str:
    """The one money rule (`gatehouse.money`), with unit costs under a dollar shown to
    `significant` digits: the FinOps pages compare sub-dollar amounts side by side."""
    return money_format(value, significant=significant, below=ONE_DOLLAR)


@register.filter
def money(value, significant: int = 2) -> str:
    return money_text(value, int(significant))


def plain_amount(value) -> str:
    """A plain decimal string for CSV (no $, no thousands separator, no exponent)."""
    amount = _decimal(value)
    if amount is None:
        return ""
    text = f"{amount:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@register.filter
def percent(value, places: int = 1) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.{int(places)}f}%"


@register.filter
def ms(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


@register.filter
def compact(value) -> str:
    """1234567 -> 1.23M."""
    if value is None:
        return "—"
    value = float(value)
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.2f}{unit}"
    return f"{value:,.0f}"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters changed (filters stay in the URL)."""
    request = context["request"]
    params = request.GET.copy()
    for name, value in changes.items():
        if value in (None, ""):
            params.pop(name, None)
        else:
            params[name] = value
    if "format" not in changes:
        params.pop("format", None)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def get_param(params, name: str) -> str:
    """The value of the `f_<name>` filter in a QueryDict (for refilling the filter bar)."""
    return params.get(f"f_{name}", "") if params is not None else ""
