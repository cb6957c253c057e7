"""Config-as-code sections for routing (see `providers.config`).

`routing`: one entry per organization (named by its slug) holding its whole live
policy document — settings, data classes, detectors, routes, rules and the
compliance matrix — in canonical form, so export -> apply -> export is exact.
Applying a changed entry records a new policy version authored by "config"
that goes live at once (the file's review is the second pair of eyes); pruning
an organization resets it to the empty policy.

`deployment_policies`: circuit-breaker settings keyed by deployment name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from console.models import Organization
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, PlanContext
from providers.config import deployment_get, entry_key, keys_after
from routing.models import DeploymentPolicy, PolicyState, PolicyVersion
from routing.policy.document import PolicyError, policy_empty, policy_normalize
from routing.services import deployment_policy_reset, deployment_policy_set, policy_propose

POLICY_KEYS = ("settings", "data_classes", "detectors", "routes", "rules", "matrix")
OPTIONAL_KEYS = ("requirements",)  # written only when set, like the canonical document


def _bind(function: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(**kwargs)


def _apply_policy(*, slug: str, document: dict[str, Any], summary: str) -> None:
    organization = Organization.objects.get(slug=slug)
    policy_propose(
        organization=organization,
        actor=None,
        document=document,
        summary=summary,
        bypass_approval=True,
        author_name="config file",
    )


class RoutingPolicySection:
    name = "routing"
    order = 36

    def existing_names(self) -> set[str]:
        return set(PolicyVersion.objects.filter(state=PolicyState.LIVE).values_list("organization__slug", flat=True))

    def export(self) -> list[dict[str, Any]]:
        rows = []
        live = PolicyVersion.objects.filter(state=PolicyState.LIVE).select_related("organization")
        for version in sorted(live, key=lambda v: v.organization.slug):
            row = {"name": version.organization.slug, **{key: version.document[key] for key in POLICY_KEYS}}
            row.update({key: version.document[key] for key in OPTIONAL_KEYS if version.document.get(key)})
            rows.append(row)
        return rows

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("routing: expected a list of entries, one per organization")
            return []
        live = {
            v.organization.slug: v
            for v in PolicyVersion.objects.filter(state=PolicyState.LIVE).select_related("organization")
        }
        slugs = set(Organization.objects.values_list("slug", flat=True))
        changes: list[Change] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"routing[{index}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                problems.append(f"{path}.name: an entry names its organization by slug")
                continue
            slug = entry["name"].strip()
            if slug in seen:
                problems.append(f"{path}.name: {slug!r} appears twice in routing")
                continue
            seen.add(slug)
            if slug not in slugs:
                problems.append(f"{path}.name: unknown organization {slug!r}")
                continue
            try:
                document = policy_normalize({key: value for key, value in entry.items() if key != "name"})
            except PolicyError as exc:
                problems.extend(f"{path}.{problem}" for problem in exc.problems)
                continue
            current = live.get(slug)
            if current is not None and current.document == document:
                changes.append(Change(self.name, slug, UNCHANGED))
                continue
            detail = tuple(
                key
                for key in POLICY_KEYS + OPTIONAL_KEYS
                if current is None or current.document.get(key) != document.get(key)
            )
            run = _bind(_apply_policy, slug=slug, document=document, summary="Applied from a config file")
            changes.append(Change(self.name, slug, CREATE if current is None else UPDATE, detail, run=run))
        if context.prune:
            empty = policy_normalize(policy_empty())
            for slug, version in sorted(live.items()):
                if slug not in seen and version.document != empty:
                    run = _bind(_apply_policy, slug=slug, document=empty, summary="Pruned by a config file")
                    changes.append(Change(self.name, slug, PRUNE, ("reset to the empty policy",), run=run))
        return changes


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a whole number of 1 or more")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86_400:
        raise ValueError(f"{value!r} is not a number of seconds between 0 and 86400")
    return float(value)


BREAKER_SPEC = (("failure_threshold", _positive_int), ("failure_window", _seconds), ("cooldown", _seconds))


class DeploymentPolicySection:
    name = "deployment_policies"
    order = 35

    def existing_names(self) -> set[str]:
        return {_key(p) for p in DeploymentPolicy.objects.select_related("deployment__organization")}

    def export(self) -> list[dict[str, Any]]:
        return [
            {
                "name": _key(p),
                "failure_threshold": p.failure_threshold,
                "failure_window": float(p.failure_window),
                "cooldown": float(p.cooldown),
            }
            for p in DeploymentPolicy.objects.select_related("deployment__organization").order_by(
                "deployment__name", "deployment__organization__slug"
            )
        ]

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("deployment_policies: expected a list of entries")
            return []
        deployments = keys_after(context, "deployments")
        existing = {_key(p): p for p in DeploymentPolicy.objects.select_related("deployment__organization")}
        changes: list[Change] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"deployment_policies[{index}]"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                problems.append(f"{path}.name: an entry names its deployment")
                continue
            name = entry["name"].strip()
            found = [f"{path}.{key}: unknown field" for key in sorted(set(entry) - {"name", *dict(BREAKER_SPEC)})]
            if name in seen:
                found.append(f"{path}.name: {name!r} appears twice")
            if name not in deployments:
                found.append(f"{path}.name: unknown deployment {name!r}")
            values: dict[str, Any] = {}
            for key, parse in BREAKER_SPEC:
                if key not in entry:
                    found.append(f"{path}.{key}: required")
                    continue
                try:
                    values[key] = parse(entry[key])
                except ValueError as exc:
                    found.append(f"{path}.{key}: {exc}")
            problems.extend(found)
            if found:
                continue
            seen.add(name)
            current = existing.get(name)
            if current is not None and all(getattr(current, k) == v for k, v in values.items()):
                changes.append(Change(self.name, name, UNCHANGED))
                continue
            run = _bind(_breaker_apply, name=name, values=values)
            action = CREATE if current is None else UPDATE
            changes.append(Change(self.name, name, action, tuple(sorted(values)), run=run))
        if context.prune:
            for name in sorted(set(existing) - seen):
                run = _bind(_breaker_drop, name=name)
                changes.append(Change(self.name, name, PRUNE, ("back to defaults",), run=run))
        return changes


def _key(policy: DeploymentPolicy) -> str:
    """The deployment as config files name it: `name`, or `<organization slug>/<name>`."""
    deployment = policy.deployment
    return entry_key(deployment.organization.slug if deployment.organization_id else None, deployment.name)


def _breaker_apply(*, name: str, values: dict[str, Any]) -> None:
    deployment_policy_set(deployment=deployment_get(name), **values)


def _breaker_drop(*, name: str) -> None:
    deployment_policy_reset(deployment=deployment_get(name))


def config_sections() -> list:
    return [DeploymentPolicySection(), RoutingPolicySection()]
