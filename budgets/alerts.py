"""Budget alerts: a threshold crossed (or a hard budget refusing) in a period.

Detection runs in the gateway process from the counter values a settlement
returns (no query); the crossing is queued in memory. Off the hot path the
runtime's budget tick records it — once per budget, period and threshold, by a
unique constraint, so several processes seeing the same crossing record it once —
as a `BudgetAlert` row and an audit event, then delivers it: a JSON webhook signed
with HMAC-SHA256 and an e-mail through Django's mail backend. Failed deliveries
are retried by the `budgets.tasks.budget_alerts_deliver` Celery task.

Webhook signature: header `X-Gatehouse-Signature: t=<unix time>,v1=<hex>` where
hex = HMAC-SHA256(secret, "<t>." + body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.utils import timezone

from audit.events import audit_record
from budgets.admission.types import CounterRef
from budgets.conf import budget_settings
from budgets.models import AlertSettings, Budget, BudgetAlert, DeliveryStatus, units_to_usd
from console.models import MANAGER_ROLES, Membership, Organization, Role
from gatehouse.money import money_format, money_plain

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
EVENT = "budget.threshold"


@dataclass(frozen=True, slots=True)
class Crossing:
    budget_id: int
    organization_id: int
    period_start: datetime
    period_end: datetime | None
    threshold: int
    spent_units: int
    limit_units: int


def thresholds_crossed(thresholds: tuple[int, ...], *, before: int, after: int, limit: int) -> list[int]:
    """Percent thresholds that `before` -> `after` reached: before < t% of limit <= after."""
    if limit <= 0:
        return [100] if after > before and after > 0 else []
    return [t for t in thresholds if before * 100 < t * limit <= after * 100]


class AlertQueue:
    """Crossings seen by this process and not yet recorded; a set keeps it from queueing one twice."""

    def __init__(self) -> None:
        self._pending: list[Crossing] = []
        self._seen: set[tuple[int, int, int]] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def _queue(self, ref: CounterRef, threshold: int, spent: int) -> None:
        mark = (ref.budget.id, int(ref.start.timestamp()), threshold)
        with self._lock:
            if mark in self._seen:
                return
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen.add(mark)
            self._pending.append(
                Crossing(
                    budget_id=ref.budget.id,
                    organization_id=ref.budget.organization_id,
                    period_start=ref.start,
                    period_end=ref.end,
                    threshold=threshold,
                    spent_units=spent,
                    limit_units=ref.budget.limit_units,
                )
            )

    def booked(self, ref: CounterRef, *, before: int, after: int) -> None:
        limit = ref.budget.limit_units
        for threshold in thresholds_crossed(ref.budget.thresholds, before=before, after=after, limit=limit):
            self._queue(ref, threshold, after)

    def refused(self, ref: CounterRef, *, used: int) -> None:
        """A hard budget turned a request away: it is, for alerting, at its limit."""
        self._queue(ref, 100, used)

    def take(self) -> list[Crossing]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._seen.clear()


def alerts_record(crossings: list[Crossing]) -> list[int]:
    """Record crossings not recorded yet (by any process); returns the new alerts' ids."""
    close_old_connections()
    created: list[int] = []
    budgets = {b.id: b for b in Budget.objects.filter(id__in={c.budget_id for c in crossings})}
    for crossing in crossings:
        budget = budgets.get(crossing.budget_id)
        if budget is None:
            continue
        try:
            with transaction.atomic():
                alert = BudgetAlert.objects.create(
                    budget=budget,
                    organization_id=crossing.organization_id,
                    period_start=crossing.period_start,
                    period_end=crossing.period_end,
                    threshold=crossing.threshold,
                    spent_units=crossing.spent_units,
                    limit_units=crossing.limit_units,
                )
                audit_record(
                    action=EVENT,
                    organization_id=crossing.organization_id,
                    actor="system",
                    target=budget.name,
                    data={
                        "budget_id": budget.id,
                        "threshold": crossing.threshold,
                        "spent": money_plain(units_to_usd(crossing.spent_units)),
                        "limit": money_plain(units_to_usd(crossing.limit_units)),
                        "period_start": crossing.period_start.isoformat(),
                        "hard": budget.hard,
                    },
                )
        except IntegrityError:
            continue  # another process recorded it first
        created.append(alert.id)
    return created


def alert_payload(alert: BudgetAlert) -> dict:
    budget = alert.budget
    return {
        "type": EVENT,
        "id": alert.id,
        "organization": budget.organization.slug,
        "budget": {
            "id": budget.id,
            "name": budget.name,
            "scope": budget.scope,
            "scope_id": budget.scope_id,
            "period": budget.period,
            "hard": budget.hard,
            "amount": money_plain(budget.amount),
        },
        "threshold": alert.threshold,
        "spent": money_plain(units_to_usd(alert.spent_units)),
        "limit": money_plain(units_to_usd(alert.limit_units)),
        "period_start": alert.period_start.isoformat(),
        "period_end": alert.period_end.isoformat() if alert.period_end else None,
        "created_at": alert.created_at.isoformat(),
    }


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_verify(secret: str, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """What a receiver does: check the signature and that it is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), header)


def alert_recipients(organization: Organization, configured: AlertSettings | None) -> list[str]:
    if configured is not None and configured.emails:
        return [str(e) for e in configured.emails]
    roles = {*MANAGER_ROLES, Role.FINANCE}
    emails = (
        Membership.objects.filter(organization=organization, role__in=roles)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    return sorted(set(emails))


def _subject(payload: dict) -> str:
    budget = payload["budget"]
    kind = "hard" if budget["hard"] else "soft"
    limit = money_format(budget["amount"])
    return f"[Gatehouse] Budget {budget['name']} at {payload['threshold']}% ({kind} limit {limit})"


def _text(payload: dict) -> str:
    budget = payload["budget"]
    ends = payload["period_end"] or "never (lifetime budget)"
    blocked = " Further requests that could overrun it are refused." if budget["hard"] else ""
    return (
        f"The {budget['period']} budget '{budget['name']}' ({budget['scope']} {budget['scope_id']}) of organization "
        f"{payload['organization']} has spent {money_format(payload['spent'])} of {money_format(payload['limit'])} "
        f"({payload['threshold']}% threshold).{blocked}\n"
        f"The period started {payload['period_start']} and resets {ends}.\n"
    )


def alert_deliver(*, alert_id: int) -> BudgetAlert:
    """Send one alert's webhook and e-mail; what failed stays pending for a retry."""
    close_old_connections()
    alert = BudgetAlert.objects.select_related("budget__organization").get(pk=alert_id)
    organization = alert.budget.organization
    configured = AlertSettings.objects.filter(organization=organization).first()
    payload = alert_payload(alert)
    errors: list[str] = []
    if alert.webhook_status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        if configured is None or not configured.webhook_url:
            alert.webhook_status = DeliveryStatus.NONE
        else:
            from gatehouse.crypto import secret_decrypt

            body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
            secret = secret_decrypt(configured.webhook_secret_encrypted)
            headers = {
                "content-type": "application/json",
                "user-agent": "Gatehouse-Alerts/1",
                "x-gatehouse-event": EVENT,
                "x-gatehouse-signature": webhook_signature(secret, int(time.time()), body),
            }
            try:
                response = httpx.post(
                    configured.webhook_url, content=body, headers=headers, timeout=budget_settings().webhook_timeout
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                alert.webhook_status = DeliveryStatus.FAILED
                errors.append(f"webhook: {exc}")
            else:
                alert.webhook_status = DeliveryStatus.SENT
    if alert.email_status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        recipients = alert_recipients(organization, configured)
        if not recipients:
            alert.email_status = DeliveryStatus.NONE
        else:
            try:
                send_mail(_subject(payload), _text(payload), settings.DEFAULT_FROM_EMAIL, recipients)
            except OSError as exc:
                alert.email_status = DeliveryStatus.FAILED
                errors.append(f"email: {exc}")
            else:
                alert.email_status = DeliveryStatus.SENT
    alert.attempts += 1
    alert.last_error = "; ".join(errors)[:500]
    if not errors:
        alert.delivered_at = timezone.now()
    alert.save(update_fields=["webhook_status", "email_status", "attempts", "last_error", "delivered_at"])
    if errors:
        logger.warning("budget alert %s not fully delivered: %s", alert.id, alert.last_error)
    return alert


def alerts_deliver(*, alert_ids: list[int]) -> None:
    for alert_id in alert_ids:
        alert_deliver(alert_id=alert_id)


def alerts_deliver_detached(*, alert_ids: list[int]) -> None:
    """`alerts_deliver` in a worker thread of its own: give its connection back when done."""
    try:
        alerts_deliver(alert_ids=alert_ids)
    finally:
        connections.close_all()


def alerts_retry() -> int:
    """Deliver again what failed before (the Celery task runs this every minute)."""
    due = list(
        BudgetAlert.objects.filter(attempts__lt=MAX_ATTEMPTS)
        .exclude(
            webhook_status__in=[DeliveryStatus.SENT, DeliveryStatus.NONE],
            email_status__in=[DeliveryStatus.SENT, DeliveryStatus.NONE],
        )
        .filter(created_at__lt=timezone.now() - timedelta(seconds=30))
        .values_list("id", flat=True)[:100]
    )
    alerts_deliver(alert_ids=due)
    return len(due)


def organization_alert_deliver(
    sender, *, organization_id: int, event: str, subject: str, text: str, payload: dict, **kwargs
) -> None:
    """Deliver another app's alert (`gatehouse.signals.organization_alert`) through the
    organization's channels: its signed webhook, when set, and e-mail. Never raises: an
    undeliverable alert is logged, as budget alerts' failed deliveries are."""
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        return
    configured = AlertSettings.objects.filter(organization=organization).first()
    if configured is not None and configured.webhook_url:
        from gatehouse.crypto import secret_decrypt

        body = json.dumps(
            {"event": event, "organization": organization.slug, **payload}, sort_keys=True, separators=(",", ":")
        ).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "Gatehouse-Alerts/1",
            "x-gatehouse-event": event,
            "x-gatehouse-signature": webhook_signature(
                secret_decrypt(configured.webhook_secret_encrypted), int(time.time()), body
            ),
        }
        try:
            httpx.post(
                configured.webhook_url, content=body, headers=headers, timeout=budget_settings().webhook_timeout
            ).raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("alert %s for %s: webhook failed: %s", event, organization.slug, exc)
    recipients = alert_recipients(organization, configured)
    if recipients:
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
        except OSError as exc:
            logger.warning("alert %s for %s: e-mail failed: %s", event, organization.slug, exc)
