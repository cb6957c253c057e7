"""Decimal field arguments every money column of the budgets app uses."""

from decimal import Decimal

MONEY = {"max_digits": 20, "decimal_places": 10, "default": Decimal("0")}  # USD, to 1e-10
UNIT_PRICE = {"max_digits": 14, "decimal_places": 6, "default": Decimal("0")}  # USD per 1M tokens
