"""One table definition per chart: rendered as HTML (sortable by URL) and as CSV.

Figures stay exact in the rows (Decimal, int); formatting happens only at the edge.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

from budgets.templatetags.finops_tags import compact, money_text, ms, plain_amount

KINDS = ("text", "money", "int", "percent", "ms", "rate", "date", "price")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    empty: str = ""

    def sorted_by(self, sort: str) -> Table:
        """Sorted by `sort` (a column key, `-` in front for descending); unknown keys leave it as is."""
        key = sort.lstrip("-")
        if key not in {c.key for c in self.columns}:
            return self

        def value(row: dict) -> tuple:
            item = row.get(key)
            if item is None:
                return (1, 0)
            return (0, item if isinstance(item, int | float | Decimal) else str(item).lower())

        rows = sorted(self.rows, key=value, reverse=sort.startswith("-"))
        if sort.startswith("-"):  # empty cells last either way
            rows = [r for r in rows if r.get(key) is not None] + [r for r in rows if r.get(key) is None]
        return Table(self.name, self.title, self.columns, rows, self.note, self.empty)

    def cells(self) -> list[list[str]]:
        return [[display(row.get(c.key), c.kind) for c in self.columns] for row in self.rows]

    def csv_response(self, filename: str) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        write_csv(
            response, [c.label for c in self.columns], ([row.get(c.key) for c in self.columns] for row in self.rows)
        )
        return response


def write_csv(out: Any, header: list[str], rows: Iterable[list[Any]]) -> None:
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_value(v) for v in row])


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain_amount(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def display(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return money_text(value)
    if kind == "price":
        return money_text(value, 4)
    if kind == "int":
        return compact(value) if abs(value) >= 10_000_000 else f"{int(value):,}"
    if kind == "percent":
        return f"{float(value):.1f}%"
    if kind == "ms":
        return ms(value)
    if kind == "rate":
        return f"{float(value):,.1f}"
    return str(value)
