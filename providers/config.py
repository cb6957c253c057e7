"""The registry's sections of the configuration file: models, providers, deployments.

The machinery (plans, changes, apply in one transaction) is `gatehouse.config`.

Secrets never appear in a file: a provider names the environment variable that
holds its key (`secret_env`). A secret stored encrypted in the database exports
as `secret_stored: true`, which apply ignores; so do the names of credential-like
extra headers (`secret_headers`), whose values are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError

from console.models import Organization
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, ConfigSection, PlanContext
from providers import services
from providers.catalog import MODEL_FIELD_NAMES, PRICE_FIELDS, model_entry_parse, price_text
from providers.headers import forward_headers_clean
from providers.models import Deployment, Lifecycle, ModelCard, Provider, ProviderKind

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
SENSITIVE_HEADER = re.compile(r"authorization|api[-_]?key|token|secret|password|cookie|signature|credential", re.I)


# --------------------------------------------------------------------------- field parsing


def _text(limit: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        if len(value) > limit:
            raise ValueError(f"longer than {limit} characters")
        return value

    return parse


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _entries_parse(
    entries: Any,
    *,
    section: str,
    spec: tuple[tuple[str, Any, Callable[[Any], Any]], ...],
    ignored: frozenset[str] = frozenset(),
    forbidden: Mapping[str, str] | None = None,
    problems: list[str],
) -> list[tuple[str, dict[str, Any]]]:
    """Validate a section's entries against a field spec (default None: required)."""
    if not isinstance(entries, list):
        problems.append(f"{section}: expected a list of entries")
        return []
    known = {key for key, _, _ in spec} | ignored | set(forbidden or {}) | {"name"}
    parsed: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        path = f"{section}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{path}: expected a mapping of fields")
            continue
        found: list[str] = []
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            found.append(f"{path}.name: an entry needs a name")
        elif len(name) > 200:
            found.append(f"{path}.name: longer than 200 characters")
        elif name.strip() in seen:
            found.append(f"{path}.name: {name.strip()!r} appears twice in {section}")
        for key in sorted(set(entry) - known, key=str):
            found.append(f"{path}.{key}: unknown field")
        for key, message in (forbidden or {}).items():
            if key in entry:
                found.append(f"{path}.{key}: {message}")
        values: dict[str, Any] = {}
        for key, default, parse in spec:
            if key not in entry:
                if default is None:
                    found.append(f"{path}.{key}: required")
                values[key] = default
                continue
            try:
                values[key] = parse(entry[key])
            except ValueError as exc:
                found.append(f"{path}.{key}: {exc}")
        problems.extend(found)
        if not found:
            values["name"] = name.strip()
            seen.add(values["name"])
            parsed.append((path, values))
    return parsed


def _changed(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in desired.items() if current[key] != value}


# --------------------------------------------------------------------------- models


class ModelSection:
    """Model cards. Pruning retires a card (usage history keeps its name) rather than deleting it."""

    name = "models"
    order = 10

    def existing_names(self) -> set[str]:
        return set(ModelCard.objects.values_list("name", flat=True))

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for card in ModelCard.objects.order_by("name"):
            row: dict[str, Any] = {"name": card.name}
            for key in MODEL_FIELD_NAMES:
                value = getattr(card, key)
                row[key] = price_text(value) if key in PRICE_FIELDS else value
            row["capabilities"] = sorted(card.capabilities or [])
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("models: expected a list of entries")
            return []
        cards = {card.name: card for card in ModelCard.objects.all()}
        changes: list[Change] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"models[{index}]"
            fields, found = model_entry_parse(entry, path=path)
            if not found and fields["name"] in seen:
                found.append(f"{path}.name: {fields['name']!r} appears twice in models")
            problems.extend(found)
            if found:
                continue
            name = fields.pop("name")
            seen.add(name)
            card = cards.get(name)
            if card is None:
                run = _bind(services.model_card_upsert, name=name, source="config", **fields)
                changes.append(Change(self.name, name, CREATE, run=run))
                continue
            changed = _changed({key: getattr(card, key) for key in fields}, fields)
            if changed:
                run = _bind(services.model_card_upsert, name=name, **changed)
                changes.append(Change(self.name, name, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, name, UNCHANGED))
        if context.prune:
            for name, card in sorted(cards.items()):
                if name not in seen and card.lifecycle != Lifecycle.RETIRED:
                    run = _bind(services.model_card_upsert, name=name, lifecycle=Lifecycle.RETIRED.value)
                    changes.append(Change(self.name, name, PRUNE, ("retire",), run=run))
        return changes


def _bind(function: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(**kwargs)


# --------------------------------------------------------------------------- providers


def _kind(value: Any) -> str:
    if value not in ProviderKind.values:
        raise ValueError(f"{value!r} is not one of {', '.join(ProviderKind.values)}")
    return value


def _base_url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "sim://")):
        raise ValueError("must start with http://, https:// or sim://")
    return value.rstrip("/")


def _organization(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not an organization slug")
    return value


def _secret_env(value: Any) -> str:
    if not isinstance(value, str) or not (value == "" or ENV_NAME.match(value)):
        raise ValueError("must be the name of an environment variable (letters, digits, underscores)")
    return value


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("expected a mapping of header names to text values")
    sensitive = sorted(k for k in value if SENSITIVE_HEADER.search(k))
    if sensitive:
        raise ValueError(
            f"{', '.join(sensitive)} looks like a credential; set it in the console, never in a config file"
        )
    return dict(value)


def _forward_headers(value: Any) -> list[str]:
    try:
        return forward_headers_clean(value)
    except ValidationError as exc:
        raise ValueError("; ".join(exc.messages)) from exc


PROVIDER_SPEC: tuple[tuple[str, Any, Callable[[Any], Any]], ...] = (
    ("organization", "", _organization),  # "" stands for absent: a shared provider
    ("kind", None, _kind),
    ("base_url", None, _base_url),
    ("api_version", "", _text(64)),
    ("secret_env", "", _secret_env),
    ("extra_headers", {}, _headers),
    ("forward_headers", [], _forward_headers),
    ("is_active", True, _flag),
)
SECRET_INLINE = "secrets are never written in config files; set secret_env to the name of an environment variable"


def _split_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    plain = {k: v for k, v in headers.items() if not SENSITIVE_HEADER.search(k)}
    sensitive = {k: v for k, v in headers.items() if SENSITIVE_HEADER.search(k)}
    return plain, sensitive


class ProviderSection:
    name = "providers"
    order = 20

    def existing_names(self) -> set[str]:
        return set(Provider.objects.values_list("name", flat=True))

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for provider in Provider.objects.select_related("organization").order_by("name"):
            plain, sensitive = _split_headers(provider.extra_headers or {})
            row: dict[str, Any] = {"name": provider.name}
            if provider.organization is not None:
                row["organization"] = provider.organization.slug
            row["kind"] = provider.kind
            row["base_url"] = provider.base_url
            if provider.api_version:
                row["api_version"] = provider.api_version
            if provider.secret_env:
                row["secret_env"] = provider.secret_env
            if provider.secret_encrypted:
                row["secret_stored"] = True
            if plain:
                row["extra_headers"] = dict(sorted(plain.items()))
            if sensitive:
                row["secret_headers"] = sorted(sensitive)
            if provider.forward_headers:
                row["forward_headers"] = sorted(provider.forward_headers)
            row["is_active"] = provider.is_active
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        parsed = _entries_parse(
            entries,
            section=self.name,
            spec=PROVIDER_SPEC,
            ignored=frozenset({"secret_stored", "secret_headers"}),
            forbidden={"secret": SECRET_INLINE, "secret_encrypted": SECRET_INLINE},
            problems=problems,
        )
        orgs = {org.slug: org for org in Organization.objects.filter(slug__in={v["organization"] for _, v in parsed})}
        existing = {p.name: p for p in Provider.objects.select_related("organization")}
        changes: list[Change] = []
        for path, values in parsed:
            name, slug = values.pop("name"), values.pop("organization")
            organization = orgs.get(slug) if slug else None
            if slug and organization is None:
                problems.append(f"{path}.organization: unknown organization {slug!r}")
                continue
            provider = existing.get(name)
            if provider is None:
                run = _bind(_provider_create, name=name, organization=organization, fields=values)
                changes.append(Change(self.name, name, CREATE, run=run))
                continue
            if provider.organization_id != (organization.id if organization else None):
                problems.append(f"{path}.organization: a provider cannot move between organizations")
                continue
            # Credential-like headers never leave the database, so a file keeps them as they are.
            values["extra_headers"] = {**values["extra_headers"], **_split_headers(provider.extra_headers or {})[1]}
            current = {key: getattr(provider, key) for key in values}
            changed = _changed(current, values)
            if changed:
                run = _bind(_provider_update, name=name, fields=changed)
                changes.append(Change(self.name, name, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, name, UNCHANGED))
        if context.prune:
            declared = context.declared(self.name)
            for name, provider in sorted(existing.items()):
                if name not in declared:
                    count = provider.deployments.count()
                    detail = (f"delete with {count} deployment{'s' if count != 1 else ''}",)
                    changes.append(Change(self.name, name, PRUNE, detail, run=_bind(_provider_delete, name=name)))
        return changes


def _provider_create(*, name: str, organization: Organization | None, fields: dict) -> None:
    fields = dict(fields)
    is_active = fields.pop("is_active")
    provider = services.provider_create(name=name, organization=organization, **fields)
    if not is_active:
        services.provider_update(provider=provider, is_active=False)


def _provider_update(*, name: str, fields: dict) -> None:
    services.provider_update(provider=Provider.objects.get(name=name), **fields)


def _provider_delete(*, name: str) -> None:
    services.provider_delete(provider=Provider.objects.get(name=name))


# --------------------------------------------------------------------------- deployments


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number of 0 or more")
    return value


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValueError(f"{value!r} is not a number of seconds between 0 and 3600")
    return float(value)


DEPLOYMENT_SPEC: tuple[tuple[str, Any, Callable[[Any], Any]], ...] = (
    ("model", None, _text(200)),
    ("provider", None, _text(200)),
    ("upstream_model", "", _text(200)),  # "": the model's name
    ("weight", 1, _weight),
    ("timeout", 120.0, _timeout),
    ("is_active", True, _flag),
)


class DeploymentSection:
    name = "deployments"
    order = 30

    def existing_names(self) -> set[str]:
        return set(Deployment.objects.values_list("name", flat=True))

    def export(self) -> list[dict[str, Any]]:
        return [
            {
                "name": d.name,
                "model": d.model.name,
                "provider": d.provider.name,
                "upstream_model": d.upstream_model,
                "weight": d.weight,
                "timeout": float(d.timeout),
                "is_active": d.is_active,
            }
            for d in Deployment.objects.select_related("model", "provider").order_by("name")
        ]

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        parsed = _entries_parse(entries, section=self.name, spec=DEPLOYMENT_SPEC, problems=problems)
        models, providers = context.names_after("models"), context.names_after("providers")
        existing = {d.name: d for d in Deployment.objects.select_related("model", "provider")}
        changes: list[Change] = []
        for path, values in parsed:
            name = values.pop("name")
            bad = False
            if values["model"] not in models:
                problems.append(f"{path}.model: unknown model {values['model']!r}")
                bad = True
            if values["provider"] not in providers:
                problems.append(f"{path}.provider: unknown provider {values['provider']!r}")
                bad = True
            if bad:
                continue
            values["upstream_model"] = values["upstream_model"] or values["model"]
            deployment = existing.get(name)
            if deployment is None:
                changes.append(Change(self.name, name, CREATE, run=_bind(_deployment_create, name=name, fields=values)))
                continue
            current = {
                "model": deployment.model.name,
                "provider": deployment.provider.name,
                "upstream_model": deployment.upstream_model,
                "weight": deployment.weight,
                "timeout": deployment.timeout,
                "is_active": deployment.is_active,
            }
            changed = _changed(current, values)
            if changed:
                run = _bind(_deployment_update, name=name, fields=changed)
                changes.append(Change(self.name, name, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, name, UNCHANGED))
        if context.prune:
            declared = context.declared(self.name)
            for name in sorted(set(existing) - declared):
                changes.append(Change(self.name, name, PRUNE, ("delete",), run=_bind(_deployment_delete, name=name)))
        return changes


def _resolve(fields: dict[str, Any]) -> dict[str, Any]:
    """Model and provider names as rows, looked up when the change runs (they may be new)."""
    resolved = dict(fields)
    if "model" in resolved:
        resolved["model"] = ModelCard.objects.get(name=resolved["model"])
    if "provider" in resolved:
        resolved["provider"] = Provider.objects.get(name=resolved["provider"])
    return resolved


def _deployment_create(*, name: str, fields: dict) -> None:
    resolved = _resolve(fields)
    is_active = resolved.pop("is_active")
    deployment = services.deployment_create(name=name, **resolved)
    if not is_active:
        services.deployment_update(deployment=deployment, is_active=False)


def _deployment_update(*, name: str, fields: dict) -> None:
    deployment = Deployment.objects.select_related("provider").get(name=name)
    services.deployment_update(deployment=deployment, **_resolve(fields))


def _deployment_delete(*, name: str) -> None:
    services.deployment_delete(deployment=Deployment.objects.select_related("provider").get(name=name))


def provider_sections() -> list[ConfigSection]:
    """The registry's sections (declared on the providers AppConfig)."""
    return [ModelSection(), ProviderSection(), DeploymentSection()]
