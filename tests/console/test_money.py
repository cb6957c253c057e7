"""One money rule for templates, e-mails, alerts and the API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from budgets.admission.refusals import _money
from gatehouse.money import money_format, money_plain
from gatehouse.money_api import MoneyField


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.0042"), "$0.0042"),
        (Decimal("0.005"), "$0.005"),
        (Decimal("0.000000012"), "$0.000000012"),
        (Decimal("0E-10"), "$0.00"),
        (Decimal("-0.004"), "-$0.004"),
        (Decimal("12.345"), "$12.35"),
        (Decimal("0.00000000001"), "<$0.0000000001"),
        ("0.25", "$0.25"),
        (None, "—"),
        ("not money", "—"),
    ],
)
def test_money_format_shows_every_amount_in_normal_notation(value, shown):
    assert money_format(value) == shown


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (Decimal("0E-10"), "0.0000000000"),
        (Decimal("1.230E-7"), "0.0000001230"),
        (Decimal("12.5"), "12.5000000000"),
        (Decimal("3"), "3.0000000000"),
        (Decimal("0.0000000001"), "0.0000000001"),
    ],
)
def test_money_plain_never_uses_an_exponent(value, plain):
    assert money_plain(value) == plain
    assert "E" not in money_plain(value)


def test_template_filter_uses_the_rule_below_a_cent():
    template = Template("{% load console_tags %}{{ a|usd }} {{ b|usd:2 }} {{ c|money }} {{ d|usd:6 }}")
    context = Context({"a": Decimal("0.0031"), "b": Decimal("5"), "c": Decimal("0E-10"), "d": Decimal("0.0001234")})
    assert template.render(context) == "$0.0031 $5.00 $0.00 $0.000123"


@pytest.mark.django_db
def test_budget_alerts_in_the_api_never_show_an_exponent():
    from budgets.api.budgets import BudgetAlertOutput
    from budgets.models import BudgetAlert

    serializer = BudgetAlertOutput()
    alert = BudgetAlert(spent_units=0, limit_units=5)
    assert serializer.get_spent(alert) == "0.0000000000"
    assert serializer.get_limit(alert) == "0.0000000005"


def test_budget_refusal_text_uses_the_rule():
    assert _money(31_000_000) == money_format(Decimal("0.0031"))  # 1e-10 USD units
    assert "E" not in _money(0)


def test_api_money_field_renders_plain_decimal_strings():
    field = MoneyField()
    assert field.to_representation(Decimal("0E-10")) == "0.0000000000"
    assert field.to_representation(Decimal("1.23E-7")) == "0.0000001230"
    assert field.to_internal_value("0.0042") == Decimal("0.0042")
