"""Writes of an organization's layer over the catalog: its contracted prices,
visibility and lifecycle of catalog models, and its private models.

Owners and admins of the organization make these; the catalog itself (list prices,
global lifecycle) is the operator's (`providers.services.model_card_upsert`).
Every write is audited in the organization and announces `catalog`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import audit_record
from console.models import Organization
from console.services import change_publish
from providers.models import DEFAULT_CAPABILITIES, ModelCard
from providers.models_org import OrganizationModel, OrgLifecycle
from providers.services import _actor, _clean_model_fields

PRICE_NAMES = ("input_price", "output_price", "cached_input_price")
PRICE_LIMIT = Decimal(10) ** 8
SETTING_FIELDS = ("visible", "lifecycle", *PRICE_NAMES, "note")


def _contract_price(name: str, value: Any) -> Decimal | None:
    if value is None or value == "":
        return None  # the list price applies
    if isinstance(value, float):
        value = repr(value)
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({name: f"{value!r} is not a price."}) from exc
    if not price.is_finite() or price < 0 or price >= PRICE_LIMIT:
        raise ValidationError({name: "A price is 0 or more and below 100,000,000."})
    if price.normalize().as_tuple().exponent < -6:
        raise ValidationError({name: "At most 6 decimal places."})
    return price


def catalog_card(name_or_id: str | int) -> ModelCard | None:
    """A model of the operator's catalog by id or name (never a private model)."""
    cards = ModelCard.objects.filter(organization__isnull=True)
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        found = cards.filter(pk=int(name_or_id)).first()
        if found is not None:
            return found
    return cards.filter(name=str(name_or_id)).first()


def organization_model_set(
    *, organization: Organization, model: ModelCard, actor: AbstractBaseUser | None = None, **fields: Any
) -> OrganizationModel:
    """Set the organization's prices, visibility or lifecycle of a catalog model.

    Absent fields keep their value; a price of None (or "") goes back to the list price.
    """
    if model.organization_id is not None:
        raise ValidationError({"model": "Private models have their own prices; edit the model."})
    unknown = set(fields) - set(SETTING_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    cleaned: dict[str, Any] = {}
    for name, value in fields.items():
        if name in PRICE_NAMES:
            cleaned[name] = _contract_price(name, value)
        elif name == "lifecycle":
            if value not in ("", *OrgLifecycle.values):
                raise ValidationError({"lifecycle": f"Unknown lifecycle {value!r}."})
            cleaned[name] = value
        elif name == "visible":
            if not isinstance(value, bool):
                raise ValidationError({"visible": "True or false."})
            cleaned[name] = value
        else:
            cleaned[name] = str(value or "")[:500]
    with transaction.atomic():
        setting, created = OrganizationModel.objects.select_for_update().get_or_create(
            organization=organization, model=model, defaults=cleaned
        )
        changed = list(cleaned) if created else [k for k, v in cleaned.items() if getattr(setting, k) != v]
        if not created and not changed:
            return setting
        for name in changed:
            setattr(setting, name, cleaned[name])
        setting.save()
        audit_record(
            action="model.organization_set",
            organization_id=organization.id,
            actor=_actor(actor),
            target=model.name,
            data={k: "" if cleaned[k] is None else str(cleaned[k]) for k in changed},
        )
    change_publish(topic="catalog", ref=f"model:{model.name}")
    return setting


def organization_model_reset(
    *, organization: Organization, model: ModelCard, actor: AbstractBaseUser | None = None
) -> bool:
    """Back to the catalog: list prices, visible, the catalog's lifecycle."""
    with transaction.atomic():
        deleted, _ = OrganizationModel.objects.filter(organization=organization, model=model).delete()
        if deleted:
            audit_record(
                action="model.organization_reset",
                organization_id=organization.id,
                actor=_actor(actor),
                target=model.name,
            )
    if deleted:
        change_publish(topic="catalog", ref=f"model:{model.name}")
    return bool(deleted)


def private_model_upsert(
    *, organization: Organization, name: str, actor: AbstractBaseUser | None = None, **fields: Any
) -> tuple[ModelCard, bool]:
    """Create or update one of the organization's own models, visible only in it."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A model needs a name."})
    if len(name) > 200:
        raise ValidationError({"name": "At most 200 characters."})
    fields.pop("source", None)
    cleaned = _clean_model_fields(fields)
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().filter(name=name, organization=organization).first()
        created = card is None
        if created:
            if ModelCard.objects.filter(name=name, organization__isnull=True).exists():
                raise ValidationError(
                    {"name": f"The catalog has a model named {name!r}; set your organization's prices for it instead."}
                )
            caps = cleaned.get("capabilities") or sorted(DEFAULT_CAPABILITIES)
            if "vendor" not in cleaned:
                raise ValidationError({"vendor": "A model needs a vendor."})
            card = ModelCard.objects.create(
                name=name, organization=organization, source="private", **{**cleaned, "capabilities": caps}
            )
            changed = sorted(cleaned)
        else:
            changed = [k for k, v in cleaned.items() if getattr(card, k) != v]
            if not changed:
                return card, False
            for key in changed:
                setattr(card, key, cleaned[key])
            card.save()
        audit_record(
            action="model.private_create" if created else "model.private_update",
            organization_id=organization.id,
            actor=_actor(actor),
            target=name,
            data={"fields": changed},
        )
    change_publish(topic="catalog", ref=f"model:{name}")
    return card, created
