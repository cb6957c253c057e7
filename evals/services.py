"""Writes for evaluation suites, cases and runs. Each change is audited."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import audit_record
from console.models import ApiKey, Organization

from .checks import CheckError, check_validate
from .models import Case, Run, RunStatus, Schedule, Suite, TaskClass
from .suite_io import SuiteFormatError, suite_parse

EVAL_KEY_NAME = "evaluations"
MAX_CONCURRENCY = 16


def _actor(user: AbstractBaseUser | None) -> str:
    return getattr(user, "username", "") or "system"


def _models_clean(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list) or not all(isinstance(m, str) and m.strip() for m in value):
        raise ValidationError({"models": "Models are a list of model names."})
    return [m.strip() for m in value]


def _case_clean(raw: Any, index: int) -> dict[str, Any]:
    where = f"Case {index + 1}"
    if not isinstance(raw, dict):
        raise ValidationError({"cases": f"{where} is not an object."})
    messages = raw.get("messages")
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and m.get("role") and "content" in m for m in messages)
    ):
        raise ValidationError({"cases": f"{where}: 'messages' must be a list of {{role, content}}."})
    check = raw.get("check")
    if not isinstance(check, dict) or "kind" not in check:
        raise ValidationError({"cases": f"{where}: 'check' must be an object with a 'kind'."})
    kind = str(check["kind"])
    spec = {k: v for k, v in check.items() if k != "kind"}
    try:
        check_validate(kind, spec)
    except CheckError as exc:
        raise ValidationError({"cases": f"{where}: {exc}"}) from None
    for field in ("response_format", "tools"):
        if raw.get(field) is not None and not isinstance(raw[field], dict | list):
            raise ValidationError({"cases": f"{where}: '{field}' must be JSON."})
    try:
        max_tokens = int(raw.get("max_tokens") or 256)
    except (TypeError, ValueError):
        raise ValidationError({"cases": f"{where}: 'max_tokens' must be a number."}) from None
    return {
        "name": str(raw.get("name") or "")[:200],
        "messages": messages,
        "response_format": raw.get("response_format"),
        "tools": raw.get("tools"),
        "max_tokens": max(1, min(max_tokens, 8192)),
        "check_kind": kind,
        "spec": spec,
    }


def _header_clean(document: dict[str, Any]) -> dict[str, Any]:
    name = str(document.get("name") or "").strip()
    if not name:
        raise ValidationError({"name": "A suite needs a name."})
    task_class = str(document.get("task_class") or TaskClass.OTHER)
    if task_class not in TaskClass.values:
        raise ValidationError({"task_class": f"Unknown task class {task_class!r}."})
    schedule = str(document.get("schedule") or "")
    if schedule not in Schedule.values:
        raise ValidationError({"schedule": f"Unknown schedule {schedule!r}; use hourly, daily or nothing."})
    return {
        "name": name[:120],
        "task_class": task_class,
        "description": str(document.get("description") or ""),
        "judge_model": str(document.get("judge_model") or "")[:200],
        "model_names": _models_clean(document.get("models")),
        "schedule": schedule,
        "pinned": bool(document.get("pinned", False)),
    }


def suite_create(
    *,
    organization: Organization,
    name: str,
    task_class: str = TaskClass.OTHER,
    description: str = "",
    judge_model: str = "",
    models: list[str] | str | None = None,
    schedule: str = "",
    pinned: bool = False,
    actor: AbstractBaseUser | None = None,
) -> Suite:
    header = _header_clean(
        {
            "name": name,
            "task_class": task_class,
            "description": description,
            "judge_model": judge_model,
            "models": models,
            "schedule": schedule,
            "pinned": pinned,
        }
    )
    if Suite.objects.filter(organization=organization, name=header["name"]).exists():
        raise ValidationError({"name": f"A suite named {header['name']!r} exists already."})
    with transaction.atomic():
        suite = Suite.objects.create(organization=organization, **header)
        audit_record(
            action="eval_suite.create", organization_id=organization.id, actor=_actor(actor), target=suite.name
        )
    return suite


def suite_update(*, suite: Suite, actor: AbstractBaseUser | None = None, **fields: Any) -> Suite:
    header = _header_clean({**_suite_header(suite), **fields})
    with transaction.atomic():
        for key, value in header.items():
            setattr(suite, key, value)
        suite.updated_at = timezone.now()
        suite.save()
        audit_record(
            action="eval_suite.update", organization_id=suite.organization_id, actor=_actor(actor), target=suite.name
        )
    return suite


def _suite_header(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name,
        "task_class": suite.task_class,
        "description": suite.description,
        "judge_model": suite.judge_model,
        "models": suite.model_names,
        "schedule": suite.schedule,
        "pinned": suite.pinned,
    }


def suite_delete(*, suite: Suite, actor: AbstractBaseUser | None = None) -> None:
    org_id, name = suite.organization_id, suite.name
    with transaction.atomic():
        suite.delete()
        audit_record(action="eval_suite.delete", organization_id=org_id, actor=_actor(actor), target=name)


def case_add(*, suite: Suite, case: dict[str, Any], actor: AbstractBaseUser | None = None) -> Case:
    """Add a case (the import shape: messages, check {kind, ...}, ...); the suite's version goes up."""
    cleaned = _case_clean(case, suite.cases.count())
    with transaction.atomic():
        last = suite.cases.order_by("-position").values_list("position", flat=True).first()
        created = Case.objects.create(suite=suite, position=(last or 0) + 1, **cleaned)
        Suite.objects.filter(pk=suite.pk).update(version=suite.version + 1, updated_at=timezone.now())
        suite.version += 1
        audit_record(
            action="eval_case.create", organization_id=suite.organization_id, actor=_actor(actor), target=suite.name
        )
    return created


def case_delete(*, case: Case, actor: AbstractBaseUser | None = None) -> None:
    suite = case.suite
    with transaction.atomic():
        case.delete()
        Suite.objects.filter(pk=suite.pk).update(version=suite.version + 1, updated_at=timezone.now())
        audit_record(
            action="eval_case.delete", organization_id=suite.organization_id, actor=_actor(actor), target=suite.name
        )


def suite_import(*, organization: Organization, text: str, fmt: str, actor: AbstractBaseUser | None = None) -> Suite:
    """Create a suite from YAML or JSONL, or replace the cases of the suite of that name
    (its version goes up). Nothing is written unless every case is valid."""
    try:
        document = suite_parse(text, fmt)
    except SuiteFormatError as exc:
        raise ValidationError({"text": str(exc)}) from None
    header = _header_clean(document)
    raw_cases = document.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise ValidationError({"cases": "A suite needs at least one case."})
    cases = [_case_clean(raw, index) for index, raw in enumerate(raw_cases)]
    with transaction.atomic():
        suite = Suite.objects.select_for_update().filter(organization=organization, name=header["name"]).first()
        if suite is None:
            suite = Suite.objects.create(organization=organization, **header)
        else:
            for key, value in header.items():
                setattr(suite, key, value)
            suite.version += 1
            suite.updated_at = timezone.now()
            suite.save()
            suite.cases.all().delete()
        Case.objects.bulk_create(Case(suite=suite, position=i + 1, **case) for i, case in enumerate(cases))
        audit_record(
            action="eval_suite.import",
            organization_id=organization.id,
            actor=_actor(actor),
            target=suite.name,
            data={"version": suite.version, "cases": len(cases)},
        )
    return suite


def eval_key_id(*, organization: Organization) -> int:
    """The organization's key for evaluation calls (made on first use)."""
    from console.services import api_key_create

    key = (
        ApiKey.objects.filter(organization=organization, name=EVAL_KEY_NAME, revoked_at__isnull=True)
        .order_by("id")
        .first()
    )
    if key is not None:
        return key.id
    issued = api_key_create(organization=organization, name=EVAL_KEY_NAME, app_name="evaluations", tags=["eval"])
    return issued.key.id


def run_create(
    *,
    suite: Suite,
    models: list[str] | str,
    concurrency: int = 4,
    trigger: str = "manual",
    actor: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> Run:
    """A queued run of the suite against `models`; its task starts after commit."""
    names = _models_clean(models)
    if not names:
        raise ValidationError({"models": "Choose at least one model."})
    if not 1 <= int(concurrency) <= MAX_CONCURRENCY:
        raise ValidationError({"concurrency": f"Concurrency is between 1 and {MAX_CONCURRENCY}."})
    from providers.facade import models_known

    unknown = sorted(set(names) - models_known(names, organization_id=suite.organization_id))
    if unknown:
        raise ValidationError({"models": f"Not in the model registry: {', '.join(unknown)}."})
    total = suite.cases.count() * len(names)
    if total == 0:
        raise ValidationError({"cases": "The suite has no cases."})
    with transaction.atomic():
        run = Run.objects.create(
            organization_id=suite.organization_id,
            suite=suite,
            suite_version=suite.version,
            model_names=names,
            concurrency=int(concurrency),
            trigger=trigger,
            total=total,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            action="eval_run.create",
            organization_id=suite.organization_id,
            actor=_actor(actor),
            target=suite.name,
            data={"run": run.id, "models": names},
        )
        if enqueue:
            from .tasks import eval_run

            transaction.on_commit(lambda: eval_run.delay(run.id))
    return run


def run_cancel(*, run: Run, actor: AbstractBaseUser | None = None) -> Run:
    """Ask a run to stop: cases under way finish, no new case starts."""
    if run.finished:
        raise ValidationError({"run": "The run has finished already."})
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)
        if run.status == RunStatus.QUEUED:
            Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
        audit_record(
            action="eval_run.cancel", organization_id=run.organization_id, actor=_actor(actor), target=str(run.id)
        )
    run.refresh_from_db()
    return run


def margin_clean(value: Any) -> Decimal:
    try:
        margin = Decimal(str(value))
    except ArithmeticError:
        raise ValidationError({"regression_margin": "A margin is a number between 0 and 1."}) from None
    if not Decimal(0) <= margin <= Decimal(1):
        raise ValidationError({"regression_margin": "A margin is a number between 0 and 1."})
    return margin


STARTER_DIR = Path(__file__).resolve().parent / "starter"


def starter_suites_install(
    *, organization: Organization, models: list[str] | None = None, actor: AbstractBaseUser | None = None
) -> list[Suite]:
    """The starter suites (classification, extraction, arithmetic) for an organization;
    a suite it has already is left as it is. `models` become the suites' default models."""
    installed = []
    for path in sorted(STARTER_DIR.glob("*.yaml")):
        document = suite_parse(path.read_text(), "yaml")
        existing = Suite.objects.filter(organization=organization, name=document["name"]).first()
        if existing is not None:
            installed.append(existing)
            continue
        if models:
            document["models"] = list(models)
        installed.append(
            suite_import(organization=organization, text=yaml.safe_dump(document), fmt="yaml", actor=actor)
        )
    return installed
