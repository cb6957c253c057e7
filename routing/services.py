"""Writes to routing policy. Every change is a new immutable policy version,
audited, and announced on the change feed (topic "routing") once it is live.

Edits (a route saved, a rule moved, a matrix cell toggled) all go the same way:
take the head document (the newest pending proposal, else the live policy),
change it, and propose the result. When the live policy requires approval, the
proposal waits for a second owner or admin; otherwise it goes live at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.events import audit_record
from console.models import MANAGER_ROLES, Membership, Organization
from console.services import change_publish
from providers.facade import certification_vocabulary
from providers.models import Deployment
from routing.models import DeploymentPolicy, PolicyState, PolicyVersion
from routing.policy.document import PolicyError, policy_normalize
from routing.policy.references import policy_references
from routing.policy.requirements import certifications_named
from routing.selectors import deployments_visible, model_names, policy_document, policy_head, policy_live


def _actor_name(actor: AbstractBaseUser | None) -> str:
    return getattr(actor, "username", "") or "system"


def policy_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def policy_diff(before: dict[str, Any] | None, after: dict[str, Any], *, label_before: str, label_after: str) -> str:
    old = policy_yaml(before).splitlines(keepends=True) if before is not None else []
    new = policy_yaml(after).splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, fromfile=label_before, tofile=label_after, n=2))


def policy_validate(*, organization: Organization, document: Any) -> dict[str, Any]:
    """The normalized document, or ValidationError listing every problem."""
    try:
        normalized = policy_normalize(document)
    except PolicyError as exc:
        raise ValidationError(exc.problems) from None
    deployments = set(deployments_visible(organization=organization).values_list("name", flat=True))
    models = model_names(organization=organization)
    problems = policy_references(
        normalized, model_exists=models.__contains__, deployment_exists=deployments.__contains__
    )
    named = certifications_named(normalized.get("requirements"))
    if named:
        known = {slug for slug, _ in certification_vocabulary(organization_id=organization.id)}
        problems += [f"requirements: {slug!r} is not in the certification vocabulary" for slug in sorted(named - known)]
    if problems:
        raise ValidationError(problems)
    return normalized


def _is_manager(organization: Organization, user: AbstractBaseUser | None) -> bool:
    if user is None:
        return False
    role = Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True).first()
    return role in MANAGER_ROLES


def _make_live(version: PolicyVersion, *, decided_by: AbstractBaseUser | None, note: str = "") -> None:
    now = timezone.now()
    PolicyVersion.objects.filter(organization_id=version.organization_id, state=PolicyState.LIVE).update(
        state=PolicyState.SUPERSEDED
    )
    # Older proposals are contained in this one (each builds on the one before).
    PolicyVersion.objects.filter(
        organization_id=version.organization_id, state=PolicyState.PENDING, number__lt=version.number
    ).update(state=PolicyState.SUPERSEDED, decided_at=now, decision_note=f"included in v{version.number}")
    version.state = PolicyState.LIVE
    version.decided_by = decided_by
    version.decided_at = now
    version.decision_note = note
    version.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    change_publish(topic="routing", ref=str(version.organization_id))


@transaction.atomic
def policy_propose(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None,
    document: Any,
    summary: str = "",
    rollback_of: int | None = None,
    bypass_approval: bool = False,
    author_name: str = "",
    review: bool = False,
) -> PolicyVersion:
    """Record a new version; live at once unless the live policy requires approval.

    `bypass_approval` is for operators applying a reviewed config file; `review` keeps
    the version pending for a second owner or admin whatever the settings (proposals
    made by the gateway itself, such as an evaluation's recommended route).
    """
    normalized = policy_validate(organization=organization, document=document)
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    head = policy_head(organization=organization)
    if head is not None and head.document == normalized:
        raise ValidationError("Nothing changed: the document equals the current head version.")
    live = policy_live(organization=organization)
    number = (PolicyVersion.objects.filter(organization=organization).aggregate(n=Max("number"))["n"] or 0) + 1
    needs_approval = (bool(live and live.document["settings"]["require_approval"]) or review) and not bypass_approval
    version = PolicyVersion.objects.create(
        organization=organization,
        number=number,
        document=normalized,
        parent=head,
        author=actor,
        author_name=author_name or _actor_name(actor),
        summary=summary[:300],
        diff=policy_diff(
            head.document if head else None,
            normalized,
            label_before=f"v{head.number}" if head else "empty",
            label_after=f"v{number}",
        ),
        rollback_of=rollback_of,
        state=PolicyState.PENDING,
    )
    if not needs_approval:
        _make_live(version, decided_by=actor, note="approval not required" if not bypass_approval else "applied")
    audit_record(
        action="routing.policy.rollback" if rollback_of else "routing.policy.propose",
        organization_id=organization.id,
        actor=version.author_name,
        target=f"v{number}",
        data={"summary": summary[:300], "state": version.state, "rollback_of": rollback_of},
    )
    return version


@transaction.atomic
def policy_approve(*, version: PolicyVersion, actor: AbstractBaseUser) -> PolicyVersion:
    """Four eyes: a second owner or admin, not the author, puts a proposal live."""
    version = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if version.state != PolicyState.PENDING:
        raise ValidationError(f"v{version.number} is {version.state}, not pending.")
    if not _is_manager(version.organization, actor):
        raise PermissionDenied("Only owners and admins approve routing changes.")
    if version.author_id is not None and version.author_id == actor.pk:
        raise PermissionDenied("A change needs a second person: its author cannot approve it.")
    _make_live(version, decided_by=actor, note="approved")
    audit_record(
        action="routing.policy.approve",
        organization_id=version.organization_id,
        actor=_actor_name(actor),
        target=f"v{version.number}",
    )
    return version


@transaction.atomic
def policy_reject(*, version: PolicyVersion, actor: AbstractBaseUser, note: str = "") -> PolicyVersion:
    """Reject a proposal and the proposals built on top of it."""
    version = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if version.state != PolicyState.PENDING:
        raise ValidationError(f"v{version.number} is {version.state}, not pending.")
    if not _is_manager(version.organization, actor):
        raise PermissionDenied("Only owners and admins reject routing changes.")
    now = timezone.now()
    PolicyVersion.objects.filter(
        organization_id=version.organization_id, state=PolicyState.PENDING, number__gt=version.number
    ).update(
        state=PolicyState.REJECTED,
        decided_by=actor,
        decided_at=now,
        decision_note=f"built on rejected v{version.number}",
    )
    version.state = PolicyState.REJECTED
    version.decided_by = actor
    version.decided_at = now
    version.decision_note = note[:300]
    version.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    audit_record(
        action="routing.policy.reject",
        organization_id=version.organization_id,
        actor=_actor_name(actor),
        target=f"v{version.number}",
        data={"note": note[:300]},
    )
    return version


def policy_rollback(*, version: PolicyVersion, actor: AbstractBaseUser | None) -> PolicyVersion:
    """A new version whose document is that of an earlier one (subject to approval like any change)."""
    return policy_propose(
        organization=version.organization,
        actor=actor,
        document=version.document,
        summary=f"Roll back to v{version.number}",
        rollback_of=version.number,
    )


# --------------------------------------------------------------------------- edits


def policy_edit(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None,
    summary: str,
    change: Callable[[dict[str, Any]], None],
    review: bool = False,
) -> PolicyVersion:
    """Apply `change` to a copy of the head document and propose the result."""
    document = policy_document(policy_head(organization=organization))
    change(document)
    return policy_propose(organization=organization, actor=actor, document=document, summary=summary, review=review)


def _index(items: list[dict[str, Any]], name: str) -> int:
    for index, item in enumerate(items):
        if item["name"] == name:
            return index
    return -1


def _put(items: list[dict[str, Any]], item: dict[str, Any], *, name: str, kind: str, replaces: str) -> None:
    """Append `item`, or put it in place of the entry named `replaces`; names stay unique."""
    if replaces:
        index = _index(items, replaces)
        if index < 0:
            raise ValidationError(f"There is no {kind} {replaces!r}.")
        if name != replaces and _index(items, name) >= 0:
            raise ValidationError(f"A {kind} named {name!r} exists already.")
        items[index] = item
    else:
        if _index(items, name) >= 0:
            raise ValidationError(f"A {kind} named {name!r} exists already.")
        items.append(item)


def _remove(items: list[dict[str, Any]], name: str, *, kind: str) -> None:
    index = _index(items, name)
    if index < 0:
        raise ValidationError(f"There is no {kind} {name!r}.")
    del items[index]


def route_put(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None,
    route: dict[str, Any],
    replaces: str = "",
    review: bool = False,
    summary: str = "",
) -> PolicyVersion:
    """Create a route, or replace the route named `replaces` (renames follow into rules and fallbacks)."""
    name = str(route.get("name") or "").strip()

    def change(document: dict[str, Any]) -> None:
        _put(document["routes"], route, name=name, kind="route", replaces=replaces)
        if replaces and name != replaces:
            _rename_destination(document, replaces, name)

    verb = "Edit" if replaces else "Add"
    summary = summary or f"{verb} route {name}"
    return policy_edit(organization=organization, actor=actor, summary=summary, change=change, review=review)


def _rename_destination(document: dict[str, Any], old: str, new: str) -> None:
    for rule in document["rules"]:
        if rule.get("route") == old:
            rule["route"] = new
    for route in document["routes"]:
        for fallback in route.get("fallbacks") or ():
            if fallback.get("route") == old:
                fallback["route"] = new
        for layer in route.get("layers") or ():
            if layer.get("route") == old:
                layer["route"] = new
    if document["settings"]["default_route"] == old:
        document["settings"]["default_route"] = new


def route_remove(*, organization: Organization, actor: AbstractBaseUser | None, name: str) -> PolicyVersion:
    def change(document: dict[str, Any]) -> None:
        _remove(document["routes"], name, kind="route")

    return policy_edit(organization=organization, actor=actor, summary=f"Remove route {name}", change=change)


def rule_put(
    *, organization: Organization, actor: AbstractBaseUser | None, rule: dict[str, Any], replaces: str = ""
) -> PolicyVersion:
    """Add a rule at the end, or replace the rule named `replaces` in place."""
    name = str(rule.get("name") or "").strip()

    def change(document: dict[str, Any]) -> None:
        _put(document["rules"], rule, name=name, kind="rule", replaces=replaces)

    verb = "Edit" if replaces else "Add"
    return policy_edit(organization=organization, actor=actor, summary=f"{verb} rule {name}", change=change)


def rule_remove(*, organization: Organization, actor: AbstractBaseUser | None, name: str) -> PolicyVersion:
    def change(document: dict[str, Any]) -> None:
        _remove(document["rules"], name, kind="rule")

    return policy_edit(organization=organization, actor=actor, summary=f"Remove rule {name}", change=change)


def rule_move(*, organization: Organization, actor: AbstractBaseUser | None, name: str, offset: int) -> PolicyVersion:
    """Move a rule up (offset -1) or down (+1); first match wins, so order matters."""

    def change(document: dict[str, Any]) -> None:
        rules = document["rules"]
        index = _index(rules, name)
        if index < 0:
            raise ValidationError(f"There is no rule {name!r}.")
        target = max(0, min(len(rules) - 1, index + offset))
        if target == index:
            raise ValidationError(f"Rule {name!r} is already {'first' if offset < 0 else 'last'}.")
        rules.insert(target, rules.pop(index))

    direction = "up" if offset < 0 else "down"
    return policy_edit(organization=organization, actor=actor, summary=f"Move rule {name} {direction}", change=change)


def matrix_set(
    *,
    organization: Organization,
    actor: AbstractBaseUser | None,
    subject: str,
    data_class: str,
    approved: bool,
) -> PolicyVersion:
    """Approve (or withdraw) a model or deployment for one data class.

    A subject not yet in the matrix starts from what the unlisted default allows.
    """

    def change(document: dict[str, Any]) -> None:
        classes = [c["name"] for c in document["data_classes"]]
        if data_class not in classes:
            raise ValidationError(f"Unknown data class {data_class!r}.")
        matrix = document["matrix"]
        current = matrix.get(subject)
        if current is None:
            current = unlisted_classes(document)
        updated = set(current)
        if approved:
            updated.add(data_class)
        else:
            updated.discard(data_class)
        matrix[subject] = [c for c in classes if c in updated]

    verb = "Approve" if approved else "Withdraw"
    return policy_edit(
        organization=organization, actor=actor, summary=f"{verb} {subject} for {data_class}", change=change
    )


def requirements_set(
    *, organization: Organization, actor: AbstractBaseUser | None, data_class: str, requirements: list[str]
) -> PolicyVersion:
    """Replace one data class's attribute rules (an empty list removes them)."""

    def change(document: dict[str, Any]) -> None:
        if data_class not in {c["name"] for c in document["data_classes"]}:
            raise ValidationError(f"Unknown data class {data_class!r}.")
        section = dict(document.get("requirements") or {})
        section[data_class] = [text for text in requirements if text.strip()]
        document["requirements"] = {cls: texts for cls, texts in section.items() if texts}

    return policy_edit(
        organization=organization, actor=actor, summary=f"Set the requirements of {data_class}", change=change
    )


def unlisted_classes(document: dict[str, Any]) -> list[str]:
    """The classes a model missing from the matrix is approved for."""
    limit = document["settings"]["unlisted_max_class"]
    classes = document["data_classes"]
    if not limit:
        return [c["name"] for c in classes]
    rank = next(c["rank"] for c in classes if c["name"] == limit)
    return [c["name"] for c in classes if c["rank"] <= rank]


def matrix_unlist(*, organization: Organization, actor: AbstractBaseUser | None, subject: str) -> PolicyVersion:
    def change(document: dict[str, Any]) -> None:
        if document["matrix"].pop(subject, None) is None:
            raise ValidationError(f"{subject!r} is not in the matrix.")

    return policy_edit(
        organization=organization, actor=actor, summary=f"Unlist {subject} from the matrix", change=change
    )


def policy_settings_put(
    *, organization: Organization, actor: AbstractBaseUser | None, summary: str = "Edit settings", **values: Any
) -> PolicyVersion:
    """Change `settings`, `data_classes` or `detectors` of the head document."""

    def change(document: dict[str, Any]) -> None:
        for key, value in values.items():
            if key in ("data_classes", "detectors"):
                document[key] = value
            elif key in document["settings"]:
                document["settings"][key] = value
            else:
                raise ValidationError(f"Unknown setting {key!r}.")

    return policy_edit(organization=organization, actor=actor, summary=summary, change=change)


# --------------------------------------------------------------------------- breaker settings


def deployment_policy_set(
    *,
    deployment: Deployment,
    actor: AbstractBaseUser | None = None,
    failure_threshold: int,
    failure_window: float,
    cooldown: float,
) -> DeploymentPolicy:
    if failure_threshold < 1:
        raise ValidationError({"failure_threshold": "At least one failure."})
    if not 0 < failure_window <= 86_400:
        raise ValidationError({"failure_window": "Between 0 and 86400 seconds."})
    if not 0 < cooldown <= 86_400:
        raise ValidationError({"cooldown": "Between 0 and 86400 seconds."})
    with transaction.atomic():
        policy, _ = DeploymentPolicy.objects.update_or_create(
            deployment=deployment,
            defaults={"failure_threshold": failure_threshold, "failure_window": failure_window, "cooldown": cooldown},
        )
        audit_record(
            action="routing.deployment_policy.set",
            organization_id=deployment.provider.organization_id,
            actor=_actor_name(actor),
            target=deployment.name,
            data={"failure_threshold": failure_threshold, "failure_window": failure_window, "cooldown": cooldown},
        )
    change_publish(topic="routing", ref=f"deployment:{deployment.id}")
    return policy


def deployment_policy_reset(*, deployment: Deployment, actor: AbstractBaseUser | None = None) -> None:
    """Back to the default breaker settings."""
    with transaction.atomic():
        DeploymentPolicy.objects.filter(deployment=deployment).delete()
        audit_record(
            action="routing.deployment_policy.reset",
            organization_id=deployment.provider.organization_id,
            actor=_actor_name(actor),
            target=deployment.name,
        )
    change_publish(topic="routing", ref=f"deployment:{deployment.id}")
