"""Writes for budgets, rate limits and alert settings.

Every change is audited and announced on the change feed (`budgets`), so every
gateway process rebuilds its compiled snapshot within one poll interval.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.events import audit_record
from budgets.clock import SYSTEM_CLOCK as clock
from budgets.models import (
    AlertSettings,
    Budget,
    BudgetAlert,
    BudgetCounter,
    BudgetPolicy,
    LimitScope,
    Period,
    RateLimit,
    Scope,
    StoreFailure,
    UsageDeadLetter,
    UsageRecord,
    default_thresholds,
)
from budgets.periods import period_bounds, zone_of
from budgets.records import REFUSED, event_decode, text_storable, usage_insert, usage_storable
from console.models import ApiKey, Membership, Organization, Team
from console.services import change_publish

TOPIC = "budgets"
MAX_AMOUNT = Decimal("1000000000")


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def scope_target_label(*, organization: Organization | None, scope: str, scope_id: int) -> str:
    """The name of what a budget or limit applies to; ValidationError when it is not in the organization."""
    if scope == Scope.ORGANIZATION:
        if organization is None or scope_id != organization.id:
            raise ValidationError({"scope_id": "An organization budget applies to its own organization."})
        return f"Organization {organization.name}"
    if scope == Scope.TEAM:
        team = Team.objects.filter(organization=organization, id=scope_id).first()
        if team is None:
            raise ValidationError({"scope_id": f"Unknown team {scope_id} in this organization."})
        return f"Team {team.name}"
    if scope == Scope.USER:
        membership = Membership.objects.filter(organization=organization, user_id=scope_id).select_related("user")
        member = membership.first()
        if member is None:
            raise ValidationError({"scope_id": f"User {scope_id} is not a member of this organization."})
        return f"User {member.user.get_username()}"
    if scope == Scope.KEY:
        key = ApiKey.objects.filter(organization=organization, id=scope_id).first()
        if key is None:
            raise ValidationError({"scope_id": f"Unknown key {scope_id} in this organization."})
        return f"Key {key.name}"
    if scope == LimitScope.DEPLOYMENT:
        from providers.models import Deployment

        deployment = Deployment.objects.filter(id=scope_id).select_related("provider").first()
        if deployment is None:
            raise ValidationError({"scope_id": f"Unknown deployment {scope_id}."})
        owner = deployment.provider.organization_id
        if owner != (organization.id if organization is not None else None):
            raise ValidationError(
                {
                    "scope_id": "Only the organization owning a deployment's provider may limit it "
                    "(shared deployments: through the configuration file)."
                }
            )
        return f"Deployment {deployment.name}"
    raise ValidationError({"scope": f"Unknown scope {scope!r}."})


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({"amount": f"{value!r} is not an amount in USD."}) from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValidationError({"amount": "The amount must be between 0 and 1,000,000,000 USD."})
    if amount != amount.quantize(Decimal(1).scaleb(-10)):
        raise ValidationError({"amount": "At most 10 decimal places."})
    return amount


def _thresholds(value: Any) -> list[int]:
    if value is None:
        return default_thresholds()
    if not isinstance(value, list | tuple) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise ValidationError({"thresholds": "A list of whole percentages, e.g. [50, 80, 100]."})
    if any(not 0 < t <= 1000 for t in value):
        raise ValidationError({"thresholds": "Each threshold lies between 1 and 1000 percent."})
    return sorted(set(value))


def _unique_name(organization: Organization, name: str, *, exclude: int | None = None) -> None:
    taken = Budget.objects.filter(organization=organization, name=name, archived_at__isnull=True)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise ValidationError({"name": f"A budget named {name!r} exists already."})


def budget_create(
    *,
    organization: Organization,
    scope: str,
    scope_id: int,
    amount: Decimal | str,
    period: str = Period.MONTHLY,
    hard: bool = True,
    thresholds: list[int] | None = None,
    name: str = "",
    actor: AbstractBaseUser | None = None,
) -> Budget:
    if scope not in Scope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r} (organization, team, user or key)."})
    if period not in Period.values:
        raise ValidationError({"period": f"Unknown period {period!r} (daily, weekly, monthly or lifetime)."})
    label = scope_target_label(organization=organization, scope=scope, scope_id=scope_id)
    name = (name or f"{label} {period}").strip()[:200]
    amount = _amount(amount)
    thresholds = _thresholds(thresholds)
    clash = Budget.objects.filter(
        organization=organization, scope=scope, scope_id=scope_id, period=period, archived_at__isnull=True
    )
    if clash.exists():
        raise ValidationError({"period": f"{label} has a {period} budget already."})
    _unique_name(organization, name)
    with transaction.atomic():
        budget = Budget.objects.create(
            organization=organization,
            name=name,
            scope=scope,
            scope_id=scope_id,
            amount=amount,
            period=period,
            hard=hard,
            thresholds=thresholds,
        )
        audit_record(
            action="budget.create",
            organization_id=organization.id,
            actor=_actor(actor),
            target=name,
            data={
                "scope": scope,
                "scope_id": scope_id,
                "amount": str(amount),
                "period": period,
                "hard": hard,
                "thresholds": thresholds,
            },
        )
        change_publish(topic=TOPIC, ref=str(budget.id))
    return budget


def budget_update(*, budget: Budget, actor: AbstractBaseUser | None = None, **fields: Any) -> Budget:
    """Change amount, mode, thresholds, name or period. The current period's counter takes the new amount."""
    allowed = {"amount", "hard", "thresholds", "name", "period"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in unknown})
    if budget.archived_at is not None:
        raise ValidationError("An archived budget cannot be changed.")
    if "amount" in fields:
        fields["amount"] = _amount(fields["amount"])
    if "thresholds" in fields:
        fields["thresholds"] = _thresholds(fields["thresholds"])
    if "period" in fields and fields["period"] not in Period.values:
        raise ValidationError({"period": f"Unknown period {fields['period']!r}."})
    if "name" in fields:
        fields["name"] = str(fields["name"]).strip()[:200]
        if not fields["name"]:
            raise ValidationError({"name": "A budget needs a name."})
        _unique_name(budget.organization, fields["name"], exclude=budget.pk)
    if "period" in fields and fields["period"] != budget.period:
        clash = Budget.objects.filter(
            organization_id=budget.organization_id,
            scope=budget.scope,
            scope_id=budget.scope_id,
            period=fields["period"],
            archived_at__isnull=True,
        ).exclude(pk=budget.pk)
        if clash.exists():
            raise ValidationError({"period": f"This scope has a {fields['period']} budget already."})
    changed = {key: value for key, value in fields.items() if getattr(budget, key) != value}
    if not changed:
        return budget
    with transaction.atomic():
        for key, value in changed.items():
            setattr(budget, key, value)
        budget.save()
        if "amount" in changed:
            start, _ = period_bounds(budget.period, clock.now(), zone_of(budget.organization.time_zone))
            BudgetCounter.objects.filter(budget=budget, period_start=start).update(limit_units=budget.amount_units)
        audit_record(
            action="budget.update",
            organization_id=budget.organization_id,
            actor=_actor(actor),
            target=budget.name,
            data={key: str(value) if isinstance(value, Decimal) else value for key, value in changed.items()},
        )
        change_publish(topic=TOPIC, ref=str(budget.id))
    return budget


def budget_archive(*, budget: Budget, actor: AbstractBaseUser | None = None) -> Budget:
    """Stop enforcing a budget; its period history stays readable."""
    if budget.archived_at is not None:
        return budget
    with transaction.atomic():
        budget.archived_at = clock.now()
        budget.save(update_fields=["archived_at", "updated_at"])
        audit_record(
            action="budget.archive", organization_id=budget.organization_id, actor=_actor(actor), target=budget.name
        )
        change_publish(topic=TOPIC, ref=str(budget.id))
    return budget


def _per_minute(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError({field: "A whole number of 1 or more (or empty for no limit)."})
    return value


def rate_limit_set(
    *,
    organization: Organization | None,
    scope: str,
    scope_id: int,
    rpm: int | None = None,
    tpm: int | None = None,
    name: str = "",
    actor: AbstractBaseUser | None = None,
) -> RateLimit:
    """Create or change the one limit of a key, user, team, organization or deployment."""
    if scope not in LimitScope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r}."})
    if organization is None and scope != LimitScope.DEPLOYMENT:
        raise ValidationError({"organization": "Only a shared deployment's limit has no organization."})
    label = scope_target_label(organization=organization, scope=scope, scope_id=scope_id)
    rpm, tpm = _per_minute(rpm, "rpm"), _per_minute(tpm, "tpm")
    if rpm is None and tpm is None:
        raise ValidationError({"rpm": "Set requests per minute, tokens per minute or both."})
    limit = RateLimit.objects.filter(scope=scope, scope_id=scope_id).first()
    name = (name or (limit.name if limit else "") or f"{label} limit").strip()[:200]
    taken = RateLimit.objects.filter(organization=organization, name=name)
    if limit is not None:
        taken = taken.exclude(pk=limit.pk)
    if taken.exists():
        raise ValidationError({"name": f"A rate limit named {name!r} exists already."})
    with transaction.atomic():
        if limit is None:
            limit = RateLimit.objects.create(
                organization=organization, name=name, scope=scope, scope_id=scope_id, rpm=rpm, tpm=tpm
            )
        else:
            limit.name, limit.rpm, limit.tpm = name, rpm, tpm
            limit.save()
        audit_record(
            action="rate_limit.set",
            organization_id=organization.id if organization else None,
            actor=_actor(actor),
            target=name,
            data={"scope": scope, "scope_id": scope_id, "rpm": rpm, "tpm": tpm},
        )
        change_publish(topic=TOPIC, ref=f"limit:{limit.id}")
    return limit


def rate_limit_delete(*, limit: RateLimit, actor: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        name, organization_id = limit.name, limit.organization_id
        limit.delete()
        audit_record(action="rate_limit.delete", organization_id=organization_id, actor=_actor(actor), target=name)
        change_publish(topic=TOPIC, ref="limit")


def alert_settings_set(
    *,
    organization: Organization,
    webhook_url: str = "",
    webhook_secret: str | None = None,
    emails: list[str] | None = None,
    actor: AbstractBaseUser | None = None,
) -> tuple[AlertSettings, str]:
    """Set where alerts go. Returns the settings and the webhook secret when one was generated (shown once)."""
    from django.core.validators import URLValidator, validate_email

    from gatehouse.crypto import secret_encrypt

    if webhook_url:
        try:
            URLValidator(schemes=["http", "https"])(webhook_url)
        except ValidationError as exc:
            raise ValidationError({"webhook_url": "Not an http(s) URL."}) from exc
    emails = [str(e).strip() for e in emails or [] if str(e).strip()]
    for email in emails:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ValidationError({"emails": f"{email!r} is not an e-mail address."}) from exc
    current = AlertSettings.objects.filter(organization=organization).first() or AlertSettings(
        organization=organization
    )
    generated = ""
    if webhook_secret:
        current.webhook_secret_encrypted = secret_encrypt(webhook_secret)
    elif webhook_url and not current.webhook_secret_encrypted:
        generated = "whsec_" + secrets.token_urlsafe(32)
        current.webhook_secret_encrypted = secret_encrypt(generated)
    current.webhook_url = webhook_url
    current.emails = emails
    with transaction.atomic():
        current.save()
        audit_record(
            action="budget.alert_settings",
            organization_id=organization.id,
            actor=_actor(actor),
            target=organization.slug,
            data={"webhook_url": webhook_url, "emails": emails, "secret_changed": bool(webhook_secret or generated)},
        )
    return current, generated


def alert_dismiss(*, alert: BudgetAlert, actor: AbstractBaseUser | None = None) -> BudgetAlert:
    if alert.dismissed_at is None:
        with transaction.atomic():
            alert.dismissed_at = clock.now()
            alert.save(update_fields=["dismissed_at"])
            audit_record(
                action="budget.alert_dismiss",
                organization_id=alert.organization_id,
                actor=_actor(actor),
                target=str(alert.id),
            )
    return alert


def dead_letter_retry(*, dead_letter: UsageDeadLetter, actor: AbstractBaseUser | None = None) -> UsageRecord:
    """Insert a set-aside usage record again, once its cause is fixed; ValidationError if it still fails.

    A request id stored meanwhile counts as done: the stored record is left as it is.
    """
    try:
        event = usage_storable(event_decode(orjson.loads(dead_letter.record)))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValidationError(f"The set-aside record cannot be read ({type(exc).__name__}: {exc}).") from exc
    try:
        usage_insert([event])
    except REFUSED as exc:
        dead_letter.attempts = min(dead_letter.attempts + 1, 32767)
        dead_letter.error = text_storable(f"{type(exc).__name__}: {exc}")[:4000]
        dead_letter.save(update_fields=["attempts", "error"])
        raise ValidationError(f"The database still refuses this record: {dead_letter.error}") from exc
    with transaction.atomic():
        audit_record(
            action="usage.dead_letter_retry",
            organization_id=dead_letter.organization_id,
            actor=_actor(actor),
            target=dead_letter.request_id,
        )
        dead_letter.delete()
    return UsageRecord.objects.get(request_id=event.request_id)


def dead_letter_discard(*, dead_letter: UsageDeadLetter, actor: AbstractBaseUser | None = None) -> None:
    """Drop a set-aside usage record for good (the audit event keeps its JSON)."""
    with transaction.atomic():
        audit_record(
            action="usage.dead_letter_discard",
            organization_id=dead_letter.organization_id,
            actor=_actor(actor),
            target=dead_letter.request_id,
            data={"record": dead_letter.record[:20000], "error": dead_letter.error[:2000]},
        )
        dead_letter.delete()


def budget_policy_set(
    *, organization: Organization, on_store_failure: str, actor: AbstractBaseUser | None = None
) -> BudgetPolicy:
    """How the organization's requests are treated when the budget store is unavailable:
    `closed` (refused with a 503, the default) or `open` (served and recorded without a hold)."""
    if on_store_failure not in StoreFailure.values:
        raise ValidationError({"on_store_failure": f"Choose one of {', '.join(StoreFailure.values)}."})
    current = BudgetPolicy.objects.filter(organization=organization).first() or BudgetPolicy(organization=organization)
    if current.pk is not None and current.on_store_failure == on_store_failure:
        return current
    current.on_store_failure = on_store_failure
    with transaction.atomic():
        current.save()
        audit_record(
            action="budget.policy",
            organization_id=organization.id,
            actor=_actor(actor),
            target=organization.slug,
            data={"on_store_failure": on_store_failure},
        )
        change_publish(topic=TOPIC, ref="policy")
    return current
