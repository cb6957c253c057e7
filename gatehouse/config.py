"""Config-as-code: the installation as a YAML file that can be reviewed in version control.

A file holds one list per section (`models`, `providers`, `deployments`,
`budgets`, `routes`, ...); every entry is keyed by a unique `name`. A section
handler exports its entries and plans the changes a file asks for; the plan is
applied in one transaction, all or nothing, through the same services the
console uses (so every write is audited and announced). Sections absent from a
file are left alone; `--prune` removes what a present section no longer lists.

Apps contribute sections by giving their AppConfig a `config_sections`
attribute: a callable, or the dotted path of one, returning section handlers. A
handler's `order` decides when it applies; prunes run in reverse order. This
module is the machinery every app shares; the sections live in their apps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.module_loading import import_string

CONFIG_VERSION = 1
HEADER = "# Gatehouse configuration. Apply with: manage.py apply_config FILE [--dry-run] [--prune]\n"

CREATE, UPDATE, UNCHANGED, PRUNE = "create", "update", "unchanged", "prune"


class ConfigError(Exception):
    """A file that cannot be applied; each problem names its entry."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


@dataclass(frozen=True)
class Change:
    section: str
    name: str
    action: str  # create | update | unchanged | prune
    detail: tuple[str, ...] = ()
    run: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        text = f"{self.action:<9} {self.section}/{self.name}"
        return f"{text}: {', '.join(self.detail)}" if self.detail else text


@dataclass
class ConfigPlan:
    source: str
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def has_changes(self) -> bool:
        return any(change.action != UNCHANGED for change in self.changes)

    def summary(self) -> str:
        return (
            f"{self.count(CREATE)} to create, {self.count(UPDATE)} to update, "
            f"{self.count(PRUNE)} to prune, {self.count(UNCHANGED)} unchanged"
        )


class PlanContext:
    """What a section may ask while planning: names that will exist after the apply."""

    def __init__(self, *, document: Mapping[str, list], prune: bool, sections: dict[str, ConfigSection]) -> None:
        self.document = document
        self.prune = prune
        self.sections = sections
        self._existing: dict[str, set[str]] = {}

    def declared(self, section: str) -> set[str]:
        return {
            entry["name"].strip()
            for entry in self.document.get(section) or []
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str)
        }

    def existing(self, section: str) -> set[str]:
        if section not in self._existing:
            self._existing[section] = self.sections[section].existing_names()
        return self._existing[section]

    def names_after(self, section: str) -> set[str]:
        if section not in self.document:
            return self.existing(section)
        if self.prune:
            return self.declared(section)
        return self.declared(section) | self.existing(section)


class ConfigSection(Protocol):
    name: str
    order: int

    def existing_names(self) -> set[str]: ...

    def export(self) -> list[dict[str, Any]]: ...

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]: ...


# --------------------------------------------------------------------------- the file


def config_sections() -> list[ConfigSection]:
    """The sections every installed app declares on its AppConfig."""
    sections: list[ConfigSection] = []
    for app_config in apps.get_app_configs():
        factory = getattr(app_config, "config_sections", None)
        if factory is None:
            continue
        if isinstance(factory, str):
            factory = import_string(factory)
        sections.extend(factory())
    names = [section.name for section in sections]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RuntimeError(f"config sections declared twice: {', '.join(duplicates)}")
    return sorted(sections, key=lambda section: section.order)


def config_export(*, sections: Iterable[str] | None = None) -> str:
    """The registry as YAML: stable key order, entries sorted by name, prices as strings."""
    wanted = set(sections) if sections is not None else None
    document: dict[str, Any] = {"version": CONFIG_VERSION}
    for section in config_sections():
        if wanted is None or section.name in wanted:
            document[section.name] = section.export()
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)
    return HEADER + body


def config_parse(text: str, *, source: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(source, ["expected a mapping of sections (models, providers, deployments, ...)"])
    return document


def config_plan(document: Mapping[str, Any], *, source: str, prune: bool = False) -> ConfigPlan:
    """Validate a whole file and say what applying it would do; raises ConfigError."""
    sections = {section.name: section for section in config_sections()}
    problems: list[str] = []
    version = document.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        problems.append(f"version: {version!r} is not supported (expected {CONFIG_VERSION})")
    for key in document:
        if key != "version" and key not in sections:
            problems.append(f"{key}: unknown section (known: {', '.join(sections)})")
    body = {name: document[name] if document[name] is not None else [] for name in sections if name in document}
    context = PlanContext(document=body, prune=prune, sections=sections)
    plan = ConfigPlan(source=source)
    for name, section in sections.items():
        if name in body:
            plan.changes.extend(section.plan(body[name], context=context, problems=problems))
    if problems:
        raise ConfigError(source, problems)
    return plan


def config_apply(document: Mapping[str, Any], *, source: str, prune: bool = False, dry_run: bool = False) -> ConfigPlan:
    """Plan and (unless dry_run) apply a file in one transaction: everything or nothing.

    Writes run in section order (file order within a section), prunes in reverse
    section order, so deployments go before the providers and models they use.
    """
    with transaction.atomic():
        plan = config_plan(document, source=source, prune=prune)
        if dry_run or not plan.has_changes:
            return plan
        writes = [change for change in plan.changes if change.action in (CREATE, UPDATE)]
        order = {section.name: section.order for section in config_sections()}
        prunes = sorted((c for c in plan.changes if c.action == PRUNE), key=lambda c: -order[c.section])
        for change in [*writes, *prunes]:
            try:
                change.run()
            except ValidationError as exc:
                raise ConfigError(source, [f"{change.section}/{change.name}: {'; '.join(exc.messages)}"]) from exc
    return plan
