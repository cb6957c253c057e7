"""The registry's sections of the configuration file: models, providers, deployments.

`models` is the operator's catalog. Providers and deployments are named per
organization: an entry with `organization: <slug>` is that organization's, one
without is shared, and other sections refer to an organization's deployment as
`<slug>/<name>` (`entry_key`). Each organization's layer over the catalog
(`model_settings`, `private_models`) is in `providers.config_org`.

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
from providers.catalog import DATE_FIELDS, MODEL_FIELD_NAMES, PRICE_FIELDS, model_entry_parse, price_text
from providers.headers import forward_headers_clean
from providers.models import Deployment, Lifecycle, ModelCard, Provider, ProviderKind

CATALOG = ModelCard.objects.filter(organization__isnull=True)  # the operator's catalog (a lazy queryset)
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


def entry_key(organization: str | None, name: str) -> str:
    """How the file names an organization's entry (`acme/name`); a shared one by its name."""
    return f"{organization}/{name}" if organization else name


def declared_keys(context: PlanContext, section: str) -> set[str]:
    """The keys (`entry_key`) of the entries a section of the file lists."""
    keys = set()
    for entry in context.document.get(section) or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            organization = entry.get("organization")
            keys.add(entry_key(organization if isinstance(organization, str) else None, entry["name"].strip()))
    return keys


def keys_after(context: PlanContext, section: str) -> set[str]:
    """The keys of a per-organization section once the file is applied (`names_after` by key)."""
    if section not in context.sections:
        return set()
    if section not in context.document:
        return context.existing(section)
    declared = declared_keys(context, section)
    return declared if context.prune else declared | context.existing(section)


def _entries_parse(
    entries: Any,
    *,
    section: str,
    spec: tuple[tuple[str, Any, Callable[[Any], Any]], ...],
    ignored: frozenset[str] = frozenset(),
    forbidden: Mapping[str, str] | None = None,
    problems: list[str],
) -> list[tuple[str, dict[str, Any]]]:
    """Validate a section's entries against a field spec (default None: required).

    A name appears once per organization (`organization` field, if the spec has one).
    """
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
        elif _seen_key(entry, name) in seen:
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
            seen.add(_seen_key(entry, name))
            parsed.append((path, values))
    return parsed


def _seen_key(entry: Mapping[str, Any], name: str) -> str:
    organization = entry.get("organization")
    return entry_key(organization if isinstance(organization, str) else None, name.strip())


def _changed(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in desired.items() if current[key] != value}


# --------------------------------------------------------------------------- models


class ModelSection:
    """Model cards. Pruning retires a card (usage history keeps its name) rather than deleting it."""

    name = "models"
    order = 10

    def existing_names(self) -> set[str]:
        return set(CATALOG.values_list("name", flat=True))

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for card in CATALOG.order_by("name"):
            row: dict[str, Any] = {"name": card.name}
            for key in MODEL_FIELD_NAMES:
                value = getattr(card, key)
                row[key] = price_text(value) if key in PRICE_FIELDS else value
                if key in DATE_FIELDS:
                    row[key] = value.isoformat() if value else ""
            row["capabilities"] = sorted(card.capabilities or [])
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("models: expected a list of entries")
            return []
        known = set(CATALOG.values_list("name", flat=True)) | {
            e.get("name") for e in entries if isinstance(e, Mapping) and isinstance(e.get("name"), str)
        }
        cards = {card.name: card for card in CATALOG.all()}
        changes: list[Change] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"models[{index}]"
            fields, found = model_entry_parse(entry, path=path)
            if not found and fields["name"] in seen:
                found.append(f"{path}.name: {fields['name']!r} appears twice in models")
            if not found and fields.get("replacement") and fields["replacement"] not in known:
                found.append(f"{path}.replacement: unknown model {fields['replacement']!r}")
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
        return {entry_key(slug, name) for slug, name in Provider.objects.values_list("organization__slug", "name")}

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
        existing = {_provider_key(p): p for p in Provider.objects.select_related("organization")}
        changes: list[Change] = []
        for path, values in parsed:
            name, slug = values.pop("name"), values.pop("organization")
            organization = orgs.get(slug) if slug else None
            if slug and organization is None:
                problems.append(f"{path}.organization: unknown organization {slug!r}")
                continue
            key = entry_key(slug, name)
            provider = existing.get(key)
            if provider is None:
                run = _bind(_provider_create, name=name, organization=organization, fields=values)
                changes.append(Change(self.name, key, CREATE, run=run))
                continue
            # Credential-like headers never leave the database, so a file keeps them as they are.
            values["extra_headers"] = {**values["extra_headers"], **_split_headers(provider.extra_headers or {})[1]}
            current = {key: getattr(provider, key) for key in values}
            changed = _changed(current, values)
            if changed:
                run = _bind(_provider_update, key=key, fields=changed)
                changes.append(Change(self.name, key, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, key, UNCHANGED))
        if context.prune:
            declared = declared_keys(context, self.name)
            for key, provider in sorted(existing.items()):
                if key not in declared:
                    count = provider.deployments.count()
                    detail = (f"delete with {count} deployment{'s' if count != 1 else ''}",)
                    changes.append(Change(self.name, key, PRUNE, detail, run=_bind(_provider_delete, key=key)))
        return changes


def _provider_create(*, name: str, organization: Organization | None, fields: dict) -> None:
    fields = dict(fields)
    is_active = fields.pop("is_active")
    provider = services.provider_create(name=name, organization=organization, **fields)
    if not is_active:
        services.provider_update(provider=provider, is_active=False)


def _provider_key(provider: Provider) -> str:
    return entry_key(provider.organization.slug if provider.organization_id else None, provider.name)


def _split_key(key: str) -> tuple[str | None, str]:
    """(organization slug or None, name) of a key; a shared name may itself contain '/'."""
    if "/" in key:
        slug, name = key.split("/", 1)
        if Organization.objects.filter(slug=slug).exists():
            return slug, name
    return None, key


def provider_get(key: str) -> Provider:
    slug, name = _split_key(key)
    return (
        Provider.objects.get(name=name, organization__slug=slug)
        if slug
        else Provider.objects.get(name=name, organization__isnull=True)
    )


def deployment_get(key: str) -> Deployment:
    """A deployment by its key in config files: `name` (shared) or `<slug>/<name>`."""
    slug, name = _split_key(key)
    deployments = Deployment.objects.select_related("provider", "model")
    if slug:
        return deployments.get(name=name, organization__slug=slug)
    return deployments.get(name=name, organization__isnull=True)


def _provider_update(*, key: str, fields: dict) -> None:
    services.provider_update(provider=provider_get(key), **fields)


def _provider_delete(*, key: str) -> None:
    services.provider_delete(provider=provider_get(key))


def provider_sections() -> list[ConfigSection]:
    """The registry's sections (declared on the providers AppConfig)."""
    from providers.config_deployments import DeploymentSection
    from providers.config_facts import compliance_sections
    from providers.config_org import ModelSettingSection, PrivateModelSection

    return [
        ModelSection(),
        PrivateModelSection(),
        ModelSettingSection(),
        ProviderSection(),
        DeploymentSection(),
        *compliance_sections(),
    ]
