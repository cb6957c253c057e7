"""The management API's money field: a plain decimal string by `gatehouse.money`'s rule."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gatehouse.money import MAX_PLACES, money_plain


@extend_schema_field({"type": "string", "format": "decimal", "example": "0.0042"})
class MoneyField(serializers.DecimalField):
    """USD as a decimal string in normal notation with the precision the amount needs.

    Input is validated like any DecimalField (at most 10 decimal places); output
    never uses an exponent (`0E-10`) and never rounds a small amount away.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_digits", 24)
        kwargs.setdefault("decimal_places", MAX_PLACES)
        super().__init__(**kwargs)

    def to_representation(self, value) -> str:
        return money_plain(value)
