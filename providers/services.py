"""Writes for the registry, providers and deployments.

Each write is audited and announces `catalog` on the change feed so every gateway
process rebuilds its snapshot. Secrets are encrypted here and never returned.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.events import audit_record
from console.models import Organization
from console.services import change_publish
from gatehouse.crypto import secret_encrypt, secret_rotate
from providers.headers import forward_headers_clean
from providers.models import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    Deployment,
    Lifecycle,
    ModelCard,
    Provider,
    ProviderKind,
    Tier,
)

MODEL_FIELDS = (
    "display_name",
    "vendor",
    "version",
    "tier",
    "context_window",
    "max_output_tokens",
    "input_price",
    "output_price",
    "cached_input_price",
    "operator_priced",
    "capabilities",
    "lifecycle",
    "description",
    "source",
    "deprecation_date",
    "retirement_date",
    "replacement",
)


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def is_operator(user: AbstractBaseUser | None) -> bool:
    """Platform operators (Django staff) own the catalog and the shared providers."""
    return bool(user is not None and (getattr(user, "is_staff", False) or getattr(user, "is_superuser", False)))


def name_check(
    model: type[Provider] | type[Deployment], *, name: str, organization_id: int | None, exclude: int | None = None
) -> None:
    """Names are unique within an organization together with the shared ones it sees.

    An organization's name may repeat another organization's (neither learns of the
    other); a shared name, which every organization sees, is checked against all.
    """
    taken = model.objects.filter(name=name)
    if organization_id is not None:
        taken = taken.filter(Q(organization__isnull=True) | Q(organization_id=organization_id))
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        kind = model._meta.verbose_name
        raise ValidationError({"name": f"A {kind} named {name!r} exists already."})


def model_usable_check(*, model: ModelCard, organization_id: int | None) -> None:
    """A private model is deployed only on its own organization's providers."""
    if model.organization_id is not None and model.organization_id != organization_id:
        raise ValidationError({"model": f"Unknown model {model.name!r}."})


def vendor_normalize(vendor: str) -> str:
    """One spelling per vendor: 'Anthropic ' and 'anthropic' are the same vendor."""
    return " ".join(str(vendor or "").split()).lower()


def _clean_model_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(MODEL_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown model card fields: {', '.join(sorted(unknown))}.")
    cleaned = dict(fields)
    for name in ("input_price", "output_price", "cached_input_price"):
        if name in cleaned:
            value = cleaned[name]
            if isinstance(value, float):
                value = repr(value)  # via str: no binary-float artefacts in money
            try:
                cleaned[name] = Decimal(str(value))
            except ArithmeticError as exc:
                raise ValidationError({name: f"{value!r} is not a price."}) from exc
            if cleaned[name] < 0:
                raise ValidationError({name: "A price cannot be negative."})
    if "vendor" in cleaned:
        cleaned["vendor"] = vendor_normalize(cleaned["vendor"])
        if not cleaned["vendor"]:
            raise ValidationError({"vendor": "A model needs a vendor."})
    if "tier" in cleaned and cleaned["tier"] not in Tier.values:
        raise ValidationError({"tier": f"Unknown tier {cleaned['tier']!r}."})
    if "lifecycle" in cleaned and cleaned["lifecycle"] not in Lifecycle.values:
        raise ValidationError({"lifecycle": f"Unknown lifecycle {cleaned['lifecycle']!r}."})
    if "capabilities" in cleaned:
        caps = list(cleaned["capabilities"] or [])
        bad = [c for c in caps if c not in CAPABILITIES]
        if bad:
            raise ValidationError({"capabilities": f"Unknown capabilities: {', '.join(bad)}."})
        cleaned["capabilities"] = sorted(set(caps))
    if "replacement" in cleaned:
        cleaned["replacement"] = str(cleaned["replacement"] or "").strip()
    return cleaned


def _lifecycle_check(card: ModelCard) -> None:
    """Dates in order; a replacement other than the card itself. (That the replacement is
    in the registry is checked where it is entered — console, API, config file — since a
    config file may create both in one apply.)"""
    if card.deprecation_date and card.retirement_date and card.retirement_date < card.deprecation_date:
        raise ValidationError({"retirement_date": "The retirement date cannot come before the deprecation date."})
    if card.replacement and card.replacement == card.name:
        raise ValidationError({"replacement": "A model cannot replace itself."})


def replacement_check(replacement: str) -> str:
    """A replacement must name a model of the registry ("" : none)."""
    replacement = (replacement or "").strip()
    if replacement and not ModelCard.objects.filter(name=replacement).exists():
        raise ValidationError(f"No model named {replacement!r} in the registry.")
    return replacement


def model_card_upsert(*, name: str, actor: AbstractBaseUser | None = None, **fields: Any) -> tuple[ModelCard, bool]:
    """Create or update a card of the operator's catalog by name; returns (card, created).

    Callers check that the actor is a platform operator (`is_operator`); an
    organization's own models go through `private_model_upsert`.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A model needs a name."})
    cleaned = _clean_model_fields(fields)
    # A card created without capabilities is a chat model that streams, not one that refuses every chat.
    defaults = {**cleaned, "capabilities": cleaned.get("capabilities") or sorted(DEFAULT_CAPABILITIES)}
    with transaction.atomic():
        card, created = ModelCard.objects.get_or_create(name=name, organization=None, defaults=defaults)
        if not created:
            changed = [field for field, value in cleaned.items() if getattr(card, field) != value]
            if not changed:
                return card, False
            for field in changed:
                setattr(card, field, cleaned[field])
            _lifecycle_check(card)
            card.save()
        else:
            _lifecycle_check(card)
        audit_record(action="model.create" if created else "model.update", actor=_actor(actor), target=name)
    change_publish(topic="catalog", ref=f"model:{name}")
    return card, created


def model_card_bulk_upsert(rows: list[dict[str, Any]], *, source: str = "import") -> tuple[int, int]:
    """Insert or update many cards in a few queries (price imports of thousands)."""
    names = [r["name"] for r in rows]
    existing = {card.name: card for card in ModelCard.objects.filter(name__in=names, organization__isnull=True)}
    to_create, to_update = [], []
    fields_seen: set[str] = set()
    for row in rows:
        row = dict(row)
        name = row.pop("name")
        cleaned = _clean_model_fields({**row, "source": row.get("source", source)})
        card = existing.get(name)
        if card is None:
            to_create.append(ModelCard(name=name, **cleaned))
        else:
            changed = False
            for field, value in cleaned.items():
                if getattr(card, field) != value:
                    setattr(card, field, value)
                    fields_seen.add(field)
                    changed = True
            if changed:
                to_update.append(card)
    with transaction.atomic():
        ModelCard.objects.bulk_create(to_create, batch_size=500)
        if to_update:
            ModelCard.objects.bulk_update(to_update, sorted(fields_seen), batch_size=500)
        audit_record(action="model.import", target=source, data={"created": len(to_create), "updated": len(to_update)})
    change_publish(topic="catalog", ref="import")
    return len(to_create), len(to_update)


def _check_provider(kind: str, base_url: str) -> None:
    if kind not in ProviderKind.values:
        raise ValidationError({"kind": f"Unknown provider kind {kind!r}."})
    if not (base_url.startswith(("http://", "https://", "sim://"))):
        raise ValidationError({"base_url": "The base URL must start with http://, https:// or sim://."})


def provider_create(
    *,
    name: str,
    kind: str,
    base_url: str,
    secret: str = "",
    secret_env: str = "",
    api_version: str = "",
    extra_headers: dict[str, str] | None = None,
    forward_headers: list[str] | None = None,
    organization: Organization | None = None,
    actor: AbstractBaseUser | None = None,
) -> Provider:
    _check_provider(kind, base_url)
    forward = forward_headers_clean(forward_headers)
    name_check(Provider, name=name, organization_id=organization.id if organization else None)
    with transaction.atomic():
        provider = Provider.objects.create(
            name=name,
            kind=kind,
            base_url=base_url.rstrip("/"),
            secret_encrypted=secret_encrypt(secret),
            secret_env=secret_env,
            api_version=api_version,
            extra_headers=dict(extra_headers or {}),
            forward_headers=forward,
            organization=organization,
        )
        audit_record(
            action="provider.create",
            organization_id=organization.id if organization else None,
            actor=_actor(actor),
            target=name,
            data={"kind": kind, "base_url": provider.base_url, "secret": "set" if secret else ""},
        )
    change_publish(topic="catalog", ref=f"provider:{name}")
    return provider


def provider_update(
    *, provider: Provider, actor: AbstractBaseUser | None = None, secret: str | None = None, **fields: Any
) -> Provider:
    """Change a provider; `secret=None` keeps the stored secret, "" clears it."""
    allowed = {"name", "kind", "base_url", "secret_env", "api_version", "extra_headers", "forward_headers", "is_active"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    if "forward_headers" in fields:
        fields = {**fields, "forward_headers": forward_headers_clean(fields["forward_headers"])}
    if "name" in fields:
        name_check(Provider, name=fields["name"], organization_id=provider.organization_id, exclude=provider.pk)
    for field, value in fields.items():
        setattr(provider, field, value)
    _check_provider(provider.kind, provider.base_url)
    if secret is not None:
        provider.secret_encrypted = secret_encrypt(secret)
    with transaction.atomic():
        provider.save()
        audit_record(
            action="provider.update",
            organization_id=provider.organization_id,
            actor=_actor(actor),
            target=provider.name,
            data={**{k: str(v) for k, v in fields.items()}, **({"secret": "changed"} if secret is not None else {})},
        )
    change_publish(topic="catalog", ref=f"provider:{provider.name}")
    return provider


def provider_delete(*, provider: Provider, actor: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        name, org_id = provider.name, provider.organization_id
        provider.delete()
        audit_record(action="provider.delete", organization_id=org_id, actor=_actor(actor), target=name)
    change_publish(topic="catalog", ref=f"provider:{name}")


def provider_secrets_rotate() -> int:
    """Re-encrypt every stored provider secret under the newest encryption key."""
    count = 0
    with transaction.atomic():
        for provider in Provider.objects.select_for_update().exclude(secret_encrypted=""):
            provider.secret_encrypted = secret_rotate(provider.secret_encrypted)
            provider.save(update_fields=["secret_encrypted"])
            count += 1
        audit_record(action="provider.secrets_rotate", data={"count": count})
    return count


def _stream_timeouts_check(*, ttft_timeout: float | None, stream_idle_timeout: float | None) -> None:
    for field, value in (("ttft_timeout", ttft_timeout), ("stream_idle_timeout", stream_idle_timeout)):
        if value is not None and not 0 < value <= 3600:
            raise ValidationError({field: "Between 0 and 3600 seconds (empty: the gateway default)."})


def deployment_create(
    *,
    model: ModelCard,
    provider: Provider,
    name: str = "",
    upstream_model: str = "",
    weight: int = 1,
    timeout: float = 120.0,
    ttft_timeout: float | None = None,
    stream_idle_timeout: float | None = None,
    pinned_version: str = "",
    health_probe: bool = True,
    actor: AbstractBaseUser | None = None,
) -> Deployment:
    name = name or f"{model.name}@{provider.name}"
    name_check(Deployment, name=name, organization_id=provider.organization_id)
    model_usable_check(model=model, organization_id=provider.organization_id)
    if weight < 0:
        raise ValidationError({"weight": "The weight cannot be negative."})
    if timeout <= 0:
        raise ValidationError({"timeout": "The timeout must be positive."})
    _stream_timeouts_check(ttft_timeout=ttft_timeout, stream_idle_timeout=stream_idle_timeout)
    with transaction.atomic():
        deployment = Deployment.objects.create(
            model=model,
            provider=provider,
            name=name,
            upstream_model=upstream_model or model.name,
            weight=weight,
            timeout=timeout,
            ttft_timeout=ttft_timeout,
            stream_idle_timeout=stream_idle_timeout,
            pinned_version=(pinned_version or "").strip(),
            health_probe=health_probe,
        )
        audit_record(
            action="deployment.create",
            organization_id=provider.organization_id,
            actor=_actor(actor),
            target=name,
            data={"model": model.name, "provider": provider.name, "upstream_model": deployment.upstream_model},
        )
    change_publish(topic="catalog", ref=f"deployment:{name}")
    return deployment


def deployment_update(*, deployment: Deployment, actor: AbstractBaseUser | None = None, **fields: Any) -> Deployment:
    allowed = {
        "name",
        "upstream_model",
        "weight",
        "timeout",
        "ttft_timeout",
        "stream_idle_timeout",
        "is_active",
        "model",
        "provider",
        "pinned_version",
        "health_probe",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Cannot change {', '.join(sorted(unknown))}.")
    provider_after = fields.get("provider", deployment.provider)
    if "name" in fields or "provider" in fields:
        name = fields.get("name", deployment.name)
        name_check(Deployment, name=name, organization_id=provider_after.organization_id, exclude=deployment.pk)
    if "model" in fields or "provider" in fields:
        model_usable_check(model=fields.get("model", deployment.model), organization_id=provider_after.organization_id)
    for field, value in fields.items():
        setattr(deployment, field, value)
    if deployment.weight < 0 or deployment.timeout <= 0:
        raise ValidationError("The weight cannot be negative and the timeout must be positive.")
    _stream_timeouts_check(ttft_timeout=deployment.ttft_timeout, stream_idle_timeout=deployment.stream_idle_timeout)
    with transaction.atomic():
        deployment.save()
        audit_record(
            action="deployment.update",
            organization_id=deployment.provider.organization_id,
            actor=_actor(actor),
            target=deployment.name,
            data={k: str(v) for k, v in fields.items()},
        )
    change_publish(topic="catalog", ref=f"deployment:{deployment.name}")
    return deployment


def deployment_delete(*, deployment: Deployment, actor: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        name = deployment.name
        org_id = deployment.provider.organization_id
        deployment.delete()
        audit_record(action="deployment.delete", organization_id=org_id, actor=_actor(actor), target=name)
    change_publish(topic="catalog", ref=f"deployment:{name}")


def lifecycle_dates_apply(*, today: date) -> list[str]:
    """Move cards whose deprecation or retirement date has come to that lifecycle."""
    moved: list[str] = []
    due = ModelCard.objects.exclude(lifecycle=Lifecycle.RETIRED).filter(
        Q(retirement_date__lte=today) | Q(deprecation_date__lte=today, lifecycle=Lifecycle.ACTIVE)
    )
    for card in due:
        state = Lifecycle.RETIRED if card.retirement_date and card.retirement_date <= today else Lifecycle.DEPRECATED
        with transaction.atomic():
            ModelCard.objects.filter(pk=card.pk).update(lifecycle=state, updated_at=timezone.now())
            audit_record(action="model.update", actor="system", target=card.name, data={"lifecycle": state.value})
        moved.append(card.name)
    if moved:
        change_publish(topic="catalog", ref="lifecycle")
    return moved
