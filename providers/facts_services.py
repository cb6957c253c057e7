"""Writes and reads of compliance facts and of each organization's certification vocabulary.

Every change of facts is audited, kept in the facts history (before and after) and
announces `catalog` on the change feed, so every gateway's snapshot carries the new
facts within one poll.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.events import audit_record
from console.models import Organization
from console.services import change_publish
from providers.facts import Facts, facts_resolve, facts_values
from providers.models import Deployment, Provider
from providers.models_compliance import (
    BUILTIN_CERTIFICATIONS,
    FACT_FIELDS,
    REGIONS,
    CertificationTerm,
    ComplianceFactChange,
    ComplianceFacts,
)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


# --------------------------------------------------------------------------- vocabulary


def certification_vocabulary(*, organization_id: int | None) -> list[tuple[str, str]]:
    """(slug, label) of the built-in certifications and the organization's own, built-ins first."""
    terms = list(BUILTIN_CERTIFICATIONS)
    if organization_id is not None:
        known = {slug for slug, _ in terms}
        for slug, label in CertificationTerm.objects.filter(organization_id=organization_id).values_list(
            "slug", "label"
        ):
            if slug not in known:
                terms.append((slug, label))
    return terms


def certification_term_put(
    *, organization: Organization, slug: str, label: str, actor: AbstractBaseUser | None = None
) -> CertificationTerm:
    slug = (slug or "").strip().lower()
    label = (label or "").strip()
    if not SLUG_RE.match(slug):
        raise ValidationError({"slug": "Lower-case letters, digits, _ and -, at most 32 characters."})
    if slug in dict(BUILTIN_CERTIFICATIONS):
        raise ValidationError({"slug": f"{slug!r} is built in."})
    if not label or len(label) > 100:
        raise ValidationError({"label": "A label of at most 100 characters is required."})
    with transaction.atomic():
        term, created = CertificationTerm.objects.update_or_create(
            organization=organization, slug=slug, defaults={"label": label}
        )
        audit_record(
            action="certification.create" if created else "certification.update",
            organization_id=organization.id,
            actor=_actor(actor),
            target=slug,
            data={"label": label},
        )
    return term


def certification_term_remove(*, organization: Organization, slug: str, actor: AbstractBaseUser | None = None) -> None:
    used = ComplianceFacts.objects.filter(
        Q(provider__organization=organization) | Q(deployment__provider__organization=organization)
    ).only("certifications")
    if any(slug in (row.certifications or []) for row in used):
        raise ValidationError({"slug": f"{slug!r} is still stated by a provider or deployment."})
    with transaction.atomic():
        deleted, _ = CertificationTerm.objects.filter(organization=organization, slug=slug).delete()
        if not deleted:
            raise ValidationError({"slug": f"No term {slug!r}."})
        audit_record(action="certification.delete", organization_id=organization.id, actor=_actor(actor), target=slug)


# --------------------------------------------------------------------------- facts


def _clean(fields: dict[str, Any], *, vocabulary: set[str] | None) -> dict[str, Any]:
    unknown = set(fields) - set(FACT_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown compliance facts: {', '.join(sorted(unknown))}.")
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "region":
            value = (value or "").strip().lower()
            if value and value not in REGIONS:
                errors[name] = f"{value!r} is not one of {', '.join(REGIONS)}."
        elif name in ("region_name", "evidence_url"):
            value = (value or "").strip()
            if name == "evidence_url" and value:
                try:
                    URLValidator(schemes=["http", "https"])(value)
                except ValidationError:
                    errors[name] = "An http(s) address of the evidence."
            if len(value) > (100 if name == "region_name" else 500):
                errors[name] = "Too long."
        elif name == "certifications":
            if value is not None:
                if isinstance(value, str):
                    value = [part.strip() for part in value.split(",")]
                if not isinstance(value, list | tuple | set | frozenset):
                    errors[name] = "A list of certification slugs."
                    continue
                value = sorted({str(v).strip().lower() for v in value if str(v).strip()})
                bad = [v for v in value if not SLUG_RE.match(v) or (vocabulary is not None and v not in vocabulary)]
                if bad:
                    errors[name] = f"Not in the vocabulary: {', '.join(bad)}."
        elif name == "retention_days":
            if value in ("", None):
                value = None
            elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
                errors[name] = "A whole number of days from 0 (nothing kept) to 36500, or empty (unknown)."
        elif name in ("trains_on_data", "zero_data_retention"):
            if value not in (True, False, None):
                errors[name] = "true, false or empty (unknown)."
        elif name == "review_due":
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value) if value else None
                except ValueError:
                    errors[name] = "A date, YYYY-MM-DD."
            elif value is not None and not isinstance(value, date):
                errors[name] = "A date, YYYY-MM-DD."
        out[name] = value
    if errors:
        raise ValidationError(errors)
    return out


def compliance_facts_set(
    *,
    provider: Provider | None = None,
    deployment: Deployment | None = None,
    actor: AbstractBaseUser | None = None,
    source: str = "console",
    **fields: Any,
) -> ComplianceFacts:
    """Set some facts of a provider or a deployment (the fields not named stay as they are).

    On a deployment, an empty value (`""`, `None`, certifications `None`) inherits the provider's.
    """
    if (provider is None) == (deployment is None):
        raise ValueError("name a provider or a deployment")
    owner = provider if provider is not None else deployment.provider
    organization_id = owner.organization_id
    vocabulary = (
        None if organization_id is None else {s for s, _ in certification_vocabulary(organization_id=organization_id)}
    )
    cleaned = _clean(fields, vocabulary=vocabulary)
    kind, subject = ("provider", provider) if provider is not None else ("deployment", deployment)
    with transaction.atomic():
        row, _ = ComplianceFacts.objects.select_for_update().get_or_create(**{kind: subject})
        before = facts_values(row)
        for name, value in cleaned.items():
            setattr(row, name, value)
        row.updated_at = timezone.now()
        row.save()
        after = facts_values(row)
        if before == after:
            return row
        changed = sorted(set(before) | set(after))
        changed = [name for name in changed if before.get(name) != after.get(name)]
        ComplianceFactChange.objects.create(
            organization_id=organization_id,
            subject_kind=kind,
            subject_id=subject.id,
            subject_name=subject.name,
            actor=_actor(actor),
            source=source,
            before={name: before.get(name) for name in changed},
            after={name: after.get(name) for name in changed},
        )
        audit_record(
            action=f"{kind}.facts",
            organization_id=organization_id,
            actor=_actor(actor),
            target=subject.name,
            data={"changed": changed, "source": source},
        )
    change_publish(topic="catalog", ref=f"{kind}:{subject.name}")
    return row


def facts_stated(*, provider: Provider | None = None, deployment: Deployment | None = None) -> dict[str, Any]:
    row = (
        ComplianceFacts.objects.filter(provider=provider).first()
        if provider is not None
        else (ComplianceFacts.objects.filter(deployment=deployment).first())
    )
    return facts_values(row)


def facts_effective(deployment: Deployment) -> Facts:
    """The facts in force for a deployment, as the gateway's snapshot computes them."""
    return facts_resolve(
        deployment=facts_stated(deployment=deployment),
        provider=facts_stated(provider=deployment.provider),
        self_hosted=deployment.model.operator_priced,
    )


def facts_history(*, kind: str, subject_ids: list[int], limit: int = 50) -> QuerySet[ComplianceFactChange]:
    return ComplianceFactChange.objects.filter(subject_kind=kind, subject_id__in=subject_ids)[:limit]


def deployment_facts_history(deployment: Deployment, *, limit: int = 50) -> QuerySet[ComplianceFactChange]:
    """Changes of the deployment's own facts and of its provider's, newest first."""
    return ComplianceFactChange.objects.filter(
        Q(subject_kind="deployment", subject_id=deployment.id)
        | Q(subject_kind="provider", subject_id=deployment.provider_id)
    )[:limit]


def facts_panel(deployments: list[Deployment], *, history_limit: int = 20) -> dict[str, Any]:
    """Each deployment with its facts in force and whether they are stale, and the latest
    changes of their facts and their providers' (two queries)."""
    provider_ids = {d.provider_id for d in deployments}
    deployment_ids = [d.id for d in deployments]
    stated: dict[tuple[str, int], dict[str, Any]] = {}
    for row in ComplianceFacts.objects.filter(Q(provider_id__in=provider_ids) | Q(deployment_id__in=deployment_ids)):
        key = ("provider", row.provider_id) if row.provider_id else ("deployment", row.deployment_id)
        stated[key] = facts_values(row)
    today = timezone.localdate()
    rows = []
    for deployment in deployments:
        facts = facts_resolve(
            deployment=stated.get(("deployment", deployment.id)),
            provider=stated.get(("provider", deployment.provider_id)),
            self_hosted=deployment.model.operator_priced,
        )
        rows.append({"deployment": deployment, "facts": facts, "stale": facts.stale(today)})
    history = ComplianceFactChange.objects.filter(
        Q(subject_kind="deployment", subject_id__in=deployment_ids)
        | Q(subject_kind="provider", subject_id__in=provider_ids)
    )[:history_limit]
    return {"rows": rows, "history": list(history)}
