"""Model governance off the request path: version drift and lifecycle alerts.

Drift: the gateway records on every usage record the version the provider said
answered (`upstream_version`, `system_fingerprint`); nothing is compared per request.
`version_drift_check` (Celery beat, every minute) reads the records written since its
last look in one grouped query, compares each deployment's reported version with the
one it reported before (`DeploymentVersion`) and, when it changed, records a
`VersionDrift` and alerts every organization whose requests saw the new version.
A pinned deployment that answers from another version than its pin drifts too.

Lifecycle: `model_lifecycle` (hourly) moves cards whose deprecation or retirement
date has come to that lifecycle, and alerts the organizations that used a model in
the last 30 days, once per model, kind and date, from N days before the date
(`GATEHOUSE_LIFECYCLE_ALERT_DAYS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from budgets.facade import VersionSighting, organizations_using_models, usage_versions_since
from gatehouse.signals import organization_alert
from providers.facade import deployment_pins, lifecycle_dates, lifecycle_dates_apply

from .models import DeploymentVersion, LifecycleNotice, VersionDrift

DRIFT_EVENT = "evals.drift"
LIFECYCLE_EVENT = "evals.lifecycle"
FIRST_LOOK = timedelta(days=1)  # how far back the very first check reads
USERS_SINCE = timedelta(days=30)  # who is told about a model's lifecycle


@dataclass
class _Seen:
    """One deployment's sightings of one version in this window, every organization merged."""

    deployment_id: int
    deployment_name: str
    model: str
    version: str
    fingerprint: str
    first_id: int
    last_id: int
    first_at: datetime
    last_at: datetime
    organizations: set[int] = field(default_factory=set)


def _merge(sightings: list[VersionSighting]) -> dict[int, list[_Seen]]:
    merged: dict[tuple[int, str], _Seen] = {}
    for s in sightings:
        seen = merged.get((s.deployment_id, s.version))
        if seen is None:
            seen = merged[(s.deployment_id, s.version)] = _Seen(
                s.deployment_id, s.deployment_name, s.model, s.version, s.fingerprint, s.first_id, s.last_id,
                s.first_at, s.last_at,
            )  # fmt: skip
        if s.last_id >= seen.last_id:
            seen.fingerprint = s.fingerprint
        seen.first_id, seen.last_id = min(seen.first_id, s.first_id), max(seen.last_id, s.last_id)
        seen.first_at, seen.last_at = min(seen.first_at, s.first_at), max(seen.last_at, s.last_at)
        seen.organizations.add(s.organization_id)
    by_deployment: dict[int, list[_Seen]] = {}
    for seen in sorted(merged.values(), key=lambda x: x.first_id):
        by_deployment.setdefault(seen.deployment_id, []).append(seen)
    return by_deployment


def version_drift_check(*, now: datetime | None = None) -> list[VersionDrift]:
    """Compare what each deployment reported since the last look with what it reported before."""
    now = now or timezone.now()
    known = {v.deployment_id: v for v in DeploymentVersion.objects.all()}
    cursor = max((v.last_record_id for v in known.values()), default=0)
    sightings = usage_versions_since(after_id=cursor, since=None if cursor else now - FIRST_LOOK)
    if not sightings:
        return []
    by_deployment = _merge(sightings)
    pins = deployment_pins(deployment_ids=list(by_deployment))
    drifts: list[VersionDrift] = []
    with transaction.atomic():
        for deployment_id, seen_list in by_deployment.items():
            current = known.get(deployment_id)
            pinned = pins.get(deployment_id, "")
            latest = max(seen_list, key=lambda x: x.last_id)
            order = [*seen_list, latest] if seen_list[-1] is not latest else seen_list
            for seen in order:
                previous = current.version if current is not None else ""
                previous_fingerprint = current.fingerprint if current is not None else ""
                changed = current is not None and seen.version != current.version
                off_pin = current is None and pinned and seen.version != pinned
                if changed or off_pin:
                    drifts.append(
                        VersionDrift.objects.create(
                            deployment_id=deployment_id,
                            deployment_name=seen.deployment_name,
                            model=seen.model,
                            previous_version=previous or pinned,
                            version=seen.version,
                            previous_fingerprint=previous_fingerprint,
                            fingerprint=seen.fingerprint,
                            pinned_version=pinned,
                            organization_ids=sorted(seen.organizations),
                            seen_at=seen.first_at,
                        )
                    )
                if current is None:
                    current = DeploymentVersion(deployment_id=deployment_id, first_seen=seen.first_at)
                elif changed:
                    current.first_seen = seen.first_at
                current.deployment_name = seen.deployment_name
                current.model = seen.model
                current.version = seen.version
                current.fingerprint = seen.fingerprint
                current.last_seen = max(seen.last_at, current.last_seen or seen.last_at)
                current.last_record_id = max(seen.last_id, current.last_record_id or 0)
            current.save()
    transaction.on_commit(lambda: [_drift_alert(d) for d in drifts])
    return drifts


def _drift_alert(drift: VersionDrift) -> None:
    pinned = f" The deployment pins {drift.pinned_version}." if drift.pinned_version else ""
    text = (
        f"The deployment {drift.deployment_name} ({drift.model}) answered from {drift.version} "
        f"(reported by the provider) on {drift.seen_at:%Y-%m-%d %H:%M} UTC; before: "
        f"{drift.previous_version or 'unknown'}.{pinned} Answers may change: re-run the pinned evaluation suites."
    )
    for organization_id in drift.organization_ids:
        organization_alert.send(
            sender=VersionDrift,
            organization_id=organization_id,
            event=DRIFT_EVENT,
            subject=f"Gatehouse: {drift.deployment_name} now answers from {drift.version}",
            text=text,
            payload={
                "deployment": drift.deployment_name,
                "model": drift.model,
                "previous_version": drift.previous_version,
                "version": drift.version,
                "previous_fingerprint": drift.previous_fingerprint,
                "fingerprint": drift.fingerprint,
                "pinned_version": drift.pinned_version,
                "seen_at": drift.seen_at.isoformat(),
            },
        )


def model_lifecycle(*, today: date | None = None, days: int | None = None) -> list[LifecycleNotice]:
    """Apply the dates that have come; alert the users of models with a date within `days`."""
    today = today or timezone.localdate()
    days = settings.GATEHOUSE["LIFECYCLE_ALERT_DAYS"] if days is None else days
    lifecycle_dates_apply(today=today)
    upcoming = [d for d in lifecycle_dates(until=today + timedelta(days=days)) if d.on_date >= today]
    if not upcoming:
        return []
    users = organizations_using_models(models=sorted({d.model for d in upcoming}), since=timezone.now() - USERS_SINCE)
    sent: list[LifecycleNotice] = []
    for announced in upcoming:
        for organization_id in sorted(users.get(announced.model, ())):
            try:
                with transaction.atomic():
                    notice = LifecycleNotice.objects.create(
                        organization_id=organization_id,
                        model=announced.model,
                        kind=announced.kind,
                        on_date=announced.on_date,
                    )
            except IntegrityError:
                continue  # told before
            sent.append(notice)
            left = (announced.on_date - today).days
            instead = f" Its replacement: {announced.replacement}." if announced.replacement else ""
            effect = (
                "From that day the gateway refuses requests for it."
                if announced.kind == "retirement"
                else "It keeps working until its retirement date."
            )
            organization_alert.send(
                sender=LifecycleNotice,
                organization_id=organization_id,
                event=LIFECYCLE_EVENT,
                subject=f"Gatehouse: {announced.model} {announced.kind} on {announced.on_date.isoformat()}",
                text=(
                    f"The model {announced.model}, which your organization used in the last 30 days, reaches "
                    f"its {announced.kind} date on {announced.on_date.isoformat()} (in {left} days). {effect}{instead}"
                ),
                payload={
                    "model": announced.model,
                    "kind": announced.kind,
                    "date": announced.on_date.isoformat(),
                    "days_left": left,
                    "replacement": announced.replacement,
                },
            )
    return sent
