"""The one rule for showing money (USD), shared by templates, e-mails, alerts and the API.

- Enough precision to show the amount: cents for amounts of a cent or more, and as
  many places as it takes to show two significant digits below a cent (up to ten,
  the precision money is stored with). A nonzero amount never reads "$0.00".
- Normal notation always: never `0E-10` or `1.2E-7`.

`money_format` is for people (templates, e-mails, alerts, page titles);
`money_plain` is for machines (API fields, CSV): a decimal string with the ten
places money is stored with.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_PLACES = 10  # money is stored to 1e-10 USD
SIGNIFICANT_BELOW_A_CENT = 2


def money_decimal(value: object) -> Decimal | None:
    """A Decimal from a Decimal, int or decimal string; None for empty or unparseable input."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # via its shortest text: no binary-float artefacts
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def money_places(
    amount: Decimal, places: int = 2, *, significant: int = SIGNIFICANT_BELOW_A_CENT, below: Decimal | None = None
) -> int:
    """Decimal places needed to show `amount` with at least `places`, and `significant` digits
    for amounts under `below` (default: the smallest amount `places` can show, a cent)."""
    places = max(0, min(int(places), MAX_PLACES))
    magnitude = abs(amount)
    if magnitude == 0 or magnitude >= (below if below is not None else Decimal(1).scaleb(-places)):
        return places
    # adjusted() is the exponent of the first significant digit: 0.0042 -> -3
    needed = -magnitude.adjusted() + max(1, int(significant)) - 1
    return max(places, min(needed, MAX_PLACES))


def money_format(
    value: object,
    places: int = 2,
    *,
    symbol: str = "$",
    empty: str = "—",
    significant: int = SIGNIFICANT_BELOW_A_CENT,
    below: Decimal | None = None,
) -> str:
    """`Decimal("1234.5")` -> "$1,234.50"; `Decimal("0.0042")` -> "$0.0042"; `0E-10` -> "$0.00".

    Dashboards that compare small unit costs pass `below=Decimal(1)`: amounts under a dollar
    then keep `significant` digits too ("$0.012" rather than "$0.01")."""
    amount = money_decimal(value)
    if amount is None:
        return empty
    shown = money_places(amount, places, significant=significant, below=below)
    rounded = amount.quantize(Decimal(1).scaleb(-shown), rounding=ROUND_HALF_UP)
    if rounded == 0 and amount != 0:
        return f"{'-' if amount < 0 else ''}<{symbol}{Decimal(1).scaleb(-MAX_PLACES):f}"
    sign = "-" if rounded < 0 else ""
    text = f"{abs(rounded):,.{shown}f}"
    if shown > places:  # extra places only for significant digits: "$0.005", not "$0.0050"
        whole, _, fraction = text.partition(".")
        fraction = fraction.rstrip("0").ljust(places, "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return f"{sign}{symbol}{text}"


def money_plain(value: object) -> str:
    """A decimal string for machines, at the stored precision: "12.5000000000", "0.0000000000".

    Always ten places (every amount exactly, one shape for parsers), never an exponent.
    """
    amount = money_decimal(value)
    if amount is None:
        return ""
    return f"{amount.quantize(Decimal(1).scaleb(-MAX_PLACES), rounding=ROUND_HALF_UP):f}"
