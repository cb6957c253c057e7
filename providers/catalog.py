"""The model catalog: the built-in card list, price-list imports and their planning.

Both the curated `catalog.yaml` and a LiteLLM price list end up as rows for
`model_card_bulk_upsert`. Rows are compared with the registry first, so a second
run writes nothing (no audit event, no change-feed noise) and a dry run can say
exactly what would change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from providers.models import CAPABILITIES, Lifecycle, ModelCard, Tier
from providers.services import model_card_bulk_upsert

CATALOG_PATH = Path(__file__).resolve().parent / "catalog.yaml"
MILLION = Decimal(1_000_000)
PRICE_STEP = Decimal("0.000001")  # ModelCard prices keep 6 decimal places
PRICE_LIMIT = Decimal(10) ** 8  # ... and 14 digits in all
PRICE_FIELDS = ("input_price", "output_price", "cached_input_price")
INT_LIMIT = 2_147_483_647
BATCH = 500


class CatalogError(Exception):
    """Problems found in a catalog or price file, each naming its entry."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


# --------------------------------------------------------------------------- fields


def price_parse(value: Any) -> Decimal:
    """A per-1M price from a string or number, exactly (floats go through `str`)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{value!r} is not a price")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a price") from None
    if not price.is_finite() or price < 0:
        raise ValueError(f"{value!r} is not a price")
    if price.normalize().as_tuple().exponent < -6:
        raise ValueError(f"{value!r} has more than 6 decimal places")
    if price >= PRICE_LIMIT:
        raise ValueError(f"{value!r} is too large")
    return price


def price_text(price: Decimal) -> str:
    """The shortest exact text of a price: Decimal("0.600000") -> "0.6"."""
    return format(Decimal(price).normalize(), "f")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{value!r} is not text (quote it)")


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT_LIMIT:
        raise ValueError(f"{value!r} is not a whole number of tokens")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _choice(choices: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(choices)

    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def _capabilities(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("capabilities must be a list")
    bad = [c for c in value if c not in CAPABILITIES]
    if bad:
        raise ValueError(f"unknown capabilities {', '.join(map(repr, bad))} (known: {', '.join(CAPABILITIES)})")
    return sorted(set(value))


def _date(value: Any) -> date | None:
    """A lifecycle date: YYYY-MM-DD (YAML may already have made it a date); empty: none."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")


# Field, default (None: required), parser — in the order files are written.
MODEL_SPEC: tuple[tuple[str, Any, Callable[[Any], Any]], ...] = (
    ("display_name", "", _text),
    ("vendor", None, _text),
    ("version", "", _text),
    ("tier", Tier.MID.value, _choice(Tier.values)),
    ("context_window", 128_000, _count),
    ("max_output_tokens", 4096, _count),
    ("input_price", Decimal("0"), price_parse),
    ("output_price", Decimal("0"), price_parse),
    ("cached_input_price", Decimal("0"), price_parse),
    ("operator_priced", False, _flag),
    ("capabilities", [], _capabilities),
    ("lifecycle", Lifecycle.ACTIVE.value, _choice(Lifecycle.values)),
    ("description", "", _text),
    ("deprecation_date", "", _date),
    ("retirement_date", "", _date),
    ("replacement", "", _text),
)
DATE_FIELDS = ("deprecation_date", "retirement_date")
MODEL_FIELD_NAMES = tuple(name for name, _, _ in MODEL_SPEC)


def model_entry_parse(
    entry: Any, *, path: str, extra: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """Validate one model entry; absent fields take their defaults.

    Returns the card fields (with `name`) and the problems, each prefixed by `path`.
    """
    if not isinstance(entry, Mapping):
        return {}, [f"{path}: expected a mapping of fields"]
    problems: list[str] = []
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{path}.name: a model needs a name")
    elif len(name) > 200:
        problems.append(f"{path}.name: longer than 200 characters")
    unknown = sorted(set(entry) - {"name", *MODEL_FIELD_NAMES, *extra})
    for key in unknown:
        problems.append(f"{path}.{key}: unknown field")
    fields: dict[str, Any] = {"name": name.strip() if isinstance(name, str) else ""}
    for key, default, parse in MODEL_SPEC:
        if key not in entry:
            if default is None:
                problems.append(f"{path}.{key}: required")
            fields[key] = list(default) if isinstance(default, list) else default
            continue
        try:
            fields[key] = parse(entry[key])
        except ValueError as exc:
            problems.append(f"{path}.{key}: {exc}")
    for key in DATE_FIELDS:
        if fields.get(key) == "":
            fields[key] = None
    return fields, problems


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class VendorInfo:
    key: str
    display_name: str
    wire: str  # the provider kind whose wire format the vendor speaks


@dataclass(frozen=True)
class Catalog:
    vendors: dict[str, VendorInfo]
    models: list[dict[str, Any]]  # card fields incl. name, ready for the upsert
    upstream: dict[str, dict[str, str]]  # model -> {provider name: upstream model id}


WIRES = ("openai", "anthropic", "gemini", "azure_openai")


def catalog_load(*, path: Path | None = None) -> Catalog:
    path = path or CATALOG_PATH
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogError(source, [f"cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise CatalogError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(document, dict):
        raise CatalogError(source, ["expected a mapping with `vendors` and `models`"])
    problems: list[str] = []
    vendors: dict[str, VendorInfo] = {}
    for key, info in (document.get("vendors") or {}).items():
        if not isinstance(info, dict) or info.get("wire") not in WIRES:
            problems.append(f"vendors.{key}.wire: one of {', '.join(WIRES)}")
            continue
        vendors[key] = VendorInfo(key=key, display_name=str(info.get("display_name") or key), wire=info["wire"])
    models: list[dict[str, Any]] = []
    upstream: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    entries = document.get("models")
    if not isinstance(entries, list):
        problems.append("models: expected a list")
        entries = []
    for index, entry in enumerate(entries):
        where = f"models[{index}]"
        fields, found = model_entry_parse(entry, path=where, extra=frozenset({"upstream"}))
        problems.extend(found)
        if found:
            continue
        if fields["name"] in seen:
            problems.append(f"{where}.name: {fields['name']!r} appears twice")
        if fields["vendor"] not in vendors:
            problems.append(f"{where}.vendor: {fields['vendor']!r} is not listed under vendors")
        mapping = entry.get("upstream") or {}
        if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
            problems.append(f"{where}.upstream: expected a mapping of provider name to model id")
            mapping = {}
        seen.add(fields["name"])
        models.append(fields)
        upstream[fields["name"]] = {str(k): v for k, v in mapping.items()}
    if problems:
        raise CatalogError(source, problems)
    return Catalog(vendors=vendors, models=models, upstream=upstream)


# --------------------------------------------------------------------------- planning

# Given an existing card and a row: the fields the row may set, or the reason to skip it.
Policy = Callable[[ModelCard, dict[str, Any]], "dict[str, Any] | str"]


@dataclass
class RowsPlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)  # name + changed fields
    unchanged: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.update)


def _chunks(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def model_rows_plan(rows: list[dict[str, Any]], *, policy: Policy | None = None) -> RowsPlan:
    """Compare rows with the registry: which to create, which fields to update.

    `policy(card, row)` narrows what a row may change on an existing card, or returns
    a string: the reason to leave that card alone.
    """
    plan = RowsPlan()
    existing: dict[str, ModelCard] = {}
    for names in _chunks([row["name"] for row in rows]):
        existing.update((card.name, card) for card in ModelCard.objects.filter(name__in=names))
    for row in rows:
        card = existing.get(row["name"])
        if card is None:
            plan.create.append(dict(row))
            continue
        desired = policy(card, row) if policy else {k: v for k, v in row.items() if k != "name"}
        if isinstance(desired, str):
            plan.skipped[desired] += 1
            continue
        changed = {key: value for key, value in desired.items() if getattr(card, key) != value}
        if changed:
            # The row names its source, so the upsert keeps a curated card's origin.
            plan.update.append({"name": row["name"], "source": desired.get("source", card.source), **changed})
        else:
            plan.unchanged.append(row["name"])
    return plan


def model_rows_write(plan: RowsPlan, *, source: str) -> tuple[int, int]:
    """Write a plan through the bulk upsert service; nothing at all when nothing changed."""
    if not plan.changes:
        return 0, 0
    created = updated = 0
    with transaction.atomic():
        for chunk in _chunks(plan.create + plan.update):
            c, u = model_card_bulk_upsert(chunk, source=source)
            created, updated = created + c, updated + u
    return created, updated


@dataclass(frozen=True)
class SeedResult:
    created: int
    updated: int
    unchanged: int


def _catalog_policy(card: ModelCard, row: dict[str, Any]) -> dict[str, Any]:
    desired = {key: value for key, value in row.items() if key != "name"}
    desired["source"] = "catalog"
    if row.get("operator_priced") and card.operator_priced:
        for key in PRICE_FIELDS:  # the operator's price stands
            desired.pop(key, None)
    return desired


def catalog_seed(*, path: Path | None = None, update: bool = True) -> SeedResult:
    """Load the built-in catalog into the registry; a second run changes nothing.

    `update=False` only adds missing cards and leaves existing ones as edited.
    """
    catalog = catalog_load(path=path)
    plan = model_rows_plan(catalog.models, policy=_catalog_policy if update else lambda card, row: {})
    created, updated = model_rows_write(plan, source="catalog")
    return SeedResult(created=created, updated=updated, unchanged=len(plan.unchanged))
