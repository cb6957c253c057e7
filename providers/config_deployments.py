"""The `deployments` section of the configuration file: a model served by a provider.

A deployment belongs to its provider's organization (`organization`, absent: shared);
its model is that organization's private model of the name, else the catalog's. Other
sections name an organization's deployment `<slug>/<name>` (`entry_key`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, PlanContext
from providers import services
from providers.config import (
    CATALOG,
    _bind,
    _changed,
    _entries_parse,
    _flag,
    _organization,
    _text,
    declared_keys,
    deployment_get,
    entry_key,
    keys_after,
    provider_get,
)
from providers.models import Deployment, ModelCard


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a whole number of 0 or more")
    return value


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValueError(f"{value!r} is not a number of seconds between 0 and 3600")
    return float(value)


DEPLOYMENT_SPEC: tuple[tuple[str, Any, Callable[[Any], Any]], ...] = (
    ("organization", "", _organization),  # its provider's organization; "": shared
    ("model", None, _text(200)),
    ("provider", None, _text(200)),
    ("upstream_model", "", _text(200)),  # "": the model's name
    ("weight", 1, _weight),
    ("timeout", 120.0, _timeout),
    ("is_active", True, _flag),
    ("pinned_version", "", _text(200)),  # "": follow the alias upstream_model
    ("health_probe", True, _flag),
)


class DeploymentSection:
    name = "deployments"
    order = 30

    def existing_names(self) -> set[str]:
        return {entry_key(slug, name) for slug, name in Deployment.objects.values_list("organization__slug", "name")}

    def export(self) -> list[dict[str, Any]]:
        return [
            {
                "name": d.name,
                **({"organization": d.organization.slug} if d.organization_id else {}),
                "model": d.model.name,
                "provider": d.provider.name,
                "upstream_model": d.upstream_model,
                "weight": d.weight,
                "timeout": float(d.timeout),
                "is_active": d.is_active,
                "pinned_version": d.pinned_version,
                "health_probe": d.health_probe,
            }
            for d in Deployment.objects.select_related("model", "provider", "organization").order_by(
                "name", "organization__slug"
            )
        ]

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        parsed = _entries_parse(entries, section=self.name, spec=DEPLOYMENT_SPEC, problems=problems)
        models, providers = context.names_after("models"), keys_after(context, "providers")
        private = keys_after(context, "private_models")
        existing = {
            entry_key(d.organization.slug if d.organization_id else None, d.name): d
            for d in Deployment.objects.select_related("model", "provider", "organization")
        }
        changes: list[Change] = []
        for path, values in parsed:
            name, slug = values.pop("name"), values.pop("organization") or None
            key = entry_key(slug, name)
            bad = False
            if values["model"] not in models and entry_key(slug, values["model"]) not in private:
                problems.append(f"{path}.model: unknown model {values['model']!r}")
                bad = True
            if entry_key(slug, values["provider"]) not in providers:
                problems.append(f"{path}.provider: unknown provider {values['provider']!r}")
                bad = True
            if bad:
                continue
            values["upstream_model"] = values["upstream_model"] or values["model"]
            values["organization"] = slug
            deployment = existing.get(key)
            if deployment is None:
                changes.append(Change(self.name, key, CREATE, run=_bind(_deployment_create, name=name, fields=values)))
                continue
            values.pop("organization")
            current = {
                "model": deployment.model.name,
                "provider": deployment.provider.name,
                "upstream_model": deployment.upstream_model,
                "weight": deployment.weight,
                "timeout": deployment.timeout,
                "is_active": deployment.is_active,
                "pinned_version": deployment.pinned_version,
                "health_probe": deployment.health_probe,
            }
            changed = _changed(current, values)
            if changed:
                run = _bind(_deployment_update, key=key, fields=changed)
                changes.append(Change(self.name, key, UPDATE, tuple(sorted(changed)), run=run))
            else:
                changes.append(Change(self.name, key, UNCHANGED))
        if context.prune:
            declared = declared_keys(context, self.name)
            for key in sorted(set(existing) - declared):
                changes.append(Change(self.name, key, PRUNE, ("delete",), run=_bind(_deployment_delete, key=key)))
        return changes


def _resolve(fields: dict[str, Any], *, slug: str | None) -> dict[str, Any]:
    """Model and provider names as rows, looked up when the change runs (they may be new).

    Within the deployment's organization: its private model of that name, else the catalog's.
    """
    resolved = dict(fields)
    if "model" in resolved:
        name = resolved["model"]
        found = ModelCard.objects.filter(name=name, organization__slug=slug).first() if slug else None
        resolved["model"] = found or CATALOG.get(name=name)
    if "provider" in resolved:
        resolved["provider"] = provider_get(entry_key(slug, resolved["provider"]))
    return resolved


def _deployment_create(*, name: str, fields: dict) -> None:
    fields = dict(fields)
    slug = fields.pop("organization")
    resolved = _resolve(fields, slug=slug)
    is_active = resolved.pop("is_active")
    deployment = services.deployment_create(name=name, **resolved)
    if not is_active:
        services.deployment_update(deployment=deployment, is_active=False)


def _deployment_update(*, key: str, fields: dict) -> None:
    deployment = deployment_get(key)
    slug = deployment.organization.slug if deployment.organization_id else None
    services.deployment_update(deployment=deployment, **_resolve(fields, slug=slug))


def _deployment_delete(*, key: str) -> None:
    services.deployment_delete(deployment=deployment_get(key))
