"""Each organization's layer over the catalog in the configuration file.

`private_models`: an organization's own models (the fields of a catalog model,
plus `organization`); pruning retires one. `model_settings`: an organization's
contracted prices, visibility and lifecycle of a catalog model (`name` is the
catalog model); pruning puts the model back to the catalog's terms. Both are
keyed per organization (`<slug>/<name>` in plans).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from console.models import Organization
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, PlanContext
from providers.catalog import MODEL_FIELD_NAMES, PRICE_FIELDS, model_entry_parse, price_parse, price_text
from providers.config import CATALOG, _bind, _changed, _entries_parse, _flag, _text, declared_keys, entry_key
from providers.models import Lifecycle, ModelCard
from providers.models_org import OrganizationModel, OrgLifecycle
from providers.services_org import organization_model_reset, organization_model_set, private_model_upsert


def _slug(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not an organization slug")
    return value


def _organizations(slugs: set[str]) -> dict[str, Organization]:
    return {org.slug: org for org in Organization.objects.filter(slug__in=slugs)}


class PrivateModelSection:
    name = "private_models"
    order = 12

    def existing_names(self) -> set[str]:
        rows = ModelCard.objects.filter(organization__isnull=False).values_list("organization__slug", "name")
        return {entry_key(slug, name) for slug, name in rows}

    def export(self) -> list[dict[str, Any]]:
        rows = []
        cards = ModelCard.objects.filter(organization__isnull=False).select_related("organization")
        for card in cards.order_by("organization__slug", "name"):
            row: dict[str, Any] = {"name": card.name, "organization": card.organization.slug}
            for key in MODEL_FIELD_NAMES:
                value = getattr(card, key)
                row[key] = price_text(value) if key in PRICE_FIELDS else value
            row["capabilities"] = sorted(card.capabilities or [])
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append(f"{self.name}: expected a list of entries")
            return []
        existing = {
            entry_key(card.organization.slug, card.name): card
            for card in ModelCard.objects.filter(organization__isnull=False).select_related("organization")
        }
        catalog = context.names_after("models")
        orgs = _organizations({e.get("organization") for e in entries if isinstance(e, dict)} - {None})
        changes: list[Change] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"{self.name}[{index}]"
            fields, found = model_entry_parse(entry, path=path, extra=frozenset({"organization"}))
            slug = entry.get("organization") if isinstance(entry, dict) else None
            if not found:
                if not isinstance(slug, str) or slug not in orgs:
                    found.append(f"{path}.organization: unknown organization {slug!r}")
                elif entry_key(slug, fields["name"]) in seen:
                    found.append(f"{path}.name: {fields['name']!r} appears twice in {self.name}")
            problems.extend(found)
            if found:
                continue
            name = fields.pop("name")
            key = entry_key(slug, name)
            seen.add(key)
            card = existing.get(key)
            if card is None:
                if name in catalog:
                    problems.append(f"{path}.name: the catalog has {name!r}; use model_settings for its prices")
                    continue
                run = _bind(private_model_upsert, organization=orgs[slug], name=name, **fields)
                changes.append(Change(self.name, key, CREATE, run=run))
                continue
            changed = _changed({k: getattr(card, k) for k in fields}, fields)
            if changed:
                run = _bind(private_model_upsert, organization=orgs[slug], name=name, **changed)
                changes.append(Change(self.name, key, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, key, UNCHANGED))
        if context.prune:
            for key, card in sorted(existing.items()):
                if key not in seen and card.lifecycle != Lifecycle.RETIRED:
                    run = _bind(
                        private_model_upsert,
                        organization=card.organization,
                        name=card.name,
                        lifecycle=Lifecycle.RETIRED.value,
                    )
                    changes.append(Change(self.name, key, PRUNE, ("retire",), run=run))
        return changes


def _price_or_list(value: Any) -> Decimal | None:
    return None if value is None else price_parse(value)


def _lifecycle(value: Any) -> str:
    if value not in ("", *OrgLifecycle.values):
        raise ValueError(f"{value!r} is not one of {', '.join(OrgLifecycle.values)} (or empty: the catalog's)")
    return value


SETTING_SPEC: tuple[tuple[str, Any, Callable[[Any], Any]], ...] = (
    ("organization", None, _slug),
    ("visible", True, _flag),
    ("lifecycle", "", _lifecycle),
    ("input_price", None, _price_or_list),  # absent or null: the list price
    ("output_price", None, _price_or_list),
    ("cached_input_price", None, _price_or_list),
    ("note", "", _text(500)),
)
NULLABLE = frozenset({"input_price", "output_price", "cached_input_price"})


def _setting_apply(*, organization: Organization, name: str, fields: dict[str, Any]) -> None:
    """Looked up when the change runs: the same file may have added the catalog model."""
    organization_model_set(organization=organization, model=CATALOG.get(name=name), **fields)


class ModelSettingSection:
    name = "model_settings"
    order = 15

    def existing_names(self) -> set[str]:
        rows = OrganizationModel.objects.values_list("organization__slug", "model__name")
        return {entry_key(slug, name) for slug, name in rows}

    def export(self) -> list[dict[str, Any]]:
        rows = []
        settings = OrganizationModel.objects.select_related("organization", "model")
        for row in settings.order_by("organization__slug", "model__name"):
            entry: dict[str, Any] = {"name": row.model.name, "organization": row.organization.slug}
            entry["visible"] = row.visible
            if row.lifecycle:
                entry["lifecycle"] = row.lifecycle
            for key in PRICE_FIELDS:
                value = getattr(row, key)
                if value is not None:
                    entry[key] = price_text(value)
            if row.note:
                entry["note"] = row.note
            rows.append(entry)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        # `organization` is required: spec defaults of None mean "required" to the parser,
        # so the nullable prices are filled in after it.
        spec = tuple((k, "" if k in NULLABLE else d, p) for k, d, p in SETTING_SPEC)
        parsed = _entries_parse(entries, section=self.name, spec=spec, problems=problems)
        for _, values in parsed:
            for key in NULLABLE:
                if values[key] == "":
                    values[key] = None
        catalog = context.names_after("models")  # the file may add the model it sets prices for
        orgs = _organizations({values["organization"] for _, values in parsed})
        existing = {
            entry_key(row.organization.slug, row.model.name): row
            for row in OrganizationModel.objects.select_related("organization", "model")
        }
        changes: list[Change] = []
        for path, values in parsed:
            name, slug = values.pop("name"), values.pop("organization")
            organization = orgs.get(slug)
            if organization is None:
                problems.append(f"{path}.organization: unknown organization {slug!r}")
                continue
            if name not in catalog:
                problems.append(f"{path}.name: {name!r} is not a model of the catalog")
                continue
            key = entry_key(slug, name)
            row = existing.get(key)
            if row is None:
                run = _bind(_setting_apply, organization=organization, name=name, fields=values)
                changes.append(Change(self.name, key, CREATE, run=run))
                continue
            changed = _changed({k: getattr(row, k) for k in values}, values)
            if changed:
                run = _bind(_setting_apply, organization=organization, name=name, fields=changed)
                changes.append(Change(self.name, key, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, key, UNCHANGED))
        if context.prune:
            declared = declared_keys(context, self.name)
            for key, row in sorted(existing.items()):
                if key not in declared:
                    run = _bind(organization_model_reset, organization=row.organization, model=row.model)
                    changes.append(Change(self.name, key, PRUNE, ("back to the catalog",), run=run))
        return changes
