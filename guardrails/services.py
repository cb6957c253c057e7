"""Writes for guard policies, recognizers and the review queue.

Every change is audited and announced on the change feed (topic "guard") so each
gateway process rebuilds its `GuardSnapshot`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import audit_record
from console.models import ApiKey, Organization, Team
from console.services import change_publish
from guardrails.detectors import BUILTIN_ENTITIES, CHECKSUMS, ENTITY_NAME
from guardrails.models import GuardPolicy, GuardRecognizer, GuardReview, ReviewStatus
from guardrails.patterns import custom_pattern_compile
from guardrails.policy import PolicyError, policy_parse

TOPIC = "guard"


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def _announce(organization: Organization) -> None:
    change_publish(topic=TOPIC, ref=f"org:{organization.id}")


def policy_set(
    *,
    organization: Organization,
    document: Any,
    team: Team | None = None,
    key: ApiKey | None = None,
    actor: AbstractBaseUser | None = None,
) -> GuardPolicy:
    """Create or replace one policy layer (organization, team or key)."""
    if team is not None and key is not None:
        raise ValidationError("A policy layer belongs to the organization, a team or a key — not both.")
    if team is not None and team.organization_id != organization.id:
        raise ValidationError({"team": "That team belongs to another organization."})
    if key is not None and key.organization_id != organization.id:
        raise ValidationError({"key": "That key belongs to another organization."})
    try:
        clean = policy_parse(document)
    except PolicyError as exc:
        raise ValidationError({"document": str(exc)}) from None
    with transaction.atomic():
        policy, _ = GuardPolicy.objects.select_for_update().get_or_create(organization=organization, team=team, key=key)
        policy.document = clean
        policy.updated_at = timezone.now()
        policy.updated_by = _actor(actor)
        policy.save()
        audit_record(
            action="guard.policy.set",
            organization_id=organization.id,
            actor=_actor(actor),
            target=policy.scope_label,
            data={"document": clean},
        )
        _announce(organization)
    return policy


def policy_delete(*, policy: GuardPolicy, actor: AbstractBaseUser | None = None) -> None:
    organization = policy.organization
    with transaction.atomic():
        label = policy.scope_label
        policy.delete()
        audit_record(action="guard.policy.delete", organization_id=organization.id, actor=_actor(actor), target=label)
        _announce(organization)


def _recognizer_clean(
    *,
    organization: Organization,
    entity: str,
    pattern: str,
    checksum: str,
    context: str,
    score: float,
    exclude: int | None = None,
) -> dict[str, Any]:
    errors = {}
    entity = entity.strip().upper()
    if not ENTITY_NAME.fullmatch(entity):
        errors["entity"] = "Upper-case letters, digits and _ (e.g. EMPLOYEE_ID), 2 to 40 characters."
    elif entity in BUILTIN_ENTITIES:
        errors["entity"] = f"{entity} is built in; choose another name."
    elif GuardRecognizer.objects.filter(organization=organization, entity=entity).exclude(pk=exclude).exists():
        errors["entity"] = f"{entity} exists already."
    try:
        custom_pattern_compile(pattern)
    except ValueError as exc:
        errors["pattern"] = str(exc)
    if checksum and checksum not in CHECKSUMS:
        errors["checksum"] = f"Unknown checksum {checksum!r}."
    if not 0 < score <= 1:
        errors["score"] = "A score above 0 and at most 1."
    if errors:
        raise ValidationError(errors)
    words = ",".join(w.strip().lower() for w in context.split(",") if w.strip())
    return {"entity": entity, "pattern": pattern, "checksum": checksum, "context": words, "score": score}


def recognizer_create(
    *,
    organization: Organization,
    entity: str,
    pattern: str,
    checksum: str = "",
    context: str = "",
    score: float = 0.8,
    actor: AbstractBaseUser | None = None,
) -> GuardRecognizer:
    fields = _recognizer_clean(
        organization=organization, entity=entity, pattern=pattern, checksum=checksum, context=context, score=score
    )
    with transaction.atomic():
        try:
            recognizer = GuardRecognizer.objects.create(organization=organization, **fields)
        except IntegrityError:
            raise ValidationError({"entity": f"{fields['entity']} exists already."}) from None
        audit_record(
            action="guard.recognizer.create",
            organization_id=organization.id,
            actor=_actor(actor),
            target=recognizer.entity,
            data={"pattern": pattern, "checksum": checksum},
        )
        _announce(organization)
    return recognizer


def recognizer_update(
    *,
    recognizer: GuardRecognizer,
    pattern: str,
    checksum: str = "",
    context: str = "",
    score: float = 0.8,
    enabled: bool = True,
    actor: AbstractBaseUser | None = None,
) -> GuardRecognizer:
    organization = recognizer.organization
    fields = _recognizer_clean(
        organization=organization,
        entity=recognizer.entity,
        pattern=pattern,
        checksum=checksum,
        context=context,
        score=score,
        exclude=recognizer.pk,
    )
    with transaction.atomic():
        for name, value in fields.items():
            setattr(recognizer, name, value)
        recognizer.enabled = enabled
        recognizer.save()
        audit_record(
            action="guard.recognizer.update",
            organization_id=organization.id,
            actor=_actor(actor),
            target=recognizer.entity,
            data={"pattern": pattern, "checksum": checksum, "enabled": enabled},
        )
        _announce(organization)
    return recognizer


def recognizer_delete(*, recognizer: GuardRecognizer, actor: AbstractBaseUser | None = None) -> None:
    organization = recognizer.organization
    with transaction.atomic():
        entity = recognizer.entity
        recognizer.delete()
        audit_record(
            action="guard.recognizer.delete", organization_id=organization.id, actor=_actor(actor), target=entity
        )
        _announce(organization)


def review_open(*, organization_id: int, request_id: str, verdict: dict[str, Any]) -> GuardReview:
    """Put a flagged request in the review queue (idempotent per request). The verdict
    holds counts, rule names and scores only — never content."""
    review, _ = GuardReview.objects.get_or_create(
        organization_id=organization_id, request_id=request_id, defaults={"verdict": verdict}
    )
    return review


def review_decide(*, review: GuardReview, status: str, note: str = "", reviewer: AbstractBaseUser) -> GuardReview:
    if status not in (ReviewStatus.ACCEPTABLE, ReviewStatus.VIOLATION):
        raise ValidationError({"status": "Decide acceptable or violation."})
    if len(note) > 2000:
        raise ValidationError({"note": "At most 2000 characters."})
    with transaction.atomic():
        review.status = status
        review.note = note.strip()
        review.reviewer = reviewer
        review.decided_at = timezone.now()
        review.save(update_fields=["status", "note", "reviewer", "decided_at"])
        audit_record(
            action="guard.review.decide",
            organization_id=review.organization_id,
            actor=_actor(reviewer),
            target=review.request_id,
            data={"status": status, "note": review.note},
        )
    return review
