"""Attribute rules of the compliance matrix: what a deployment's compliance facts must say
for it to carry a data class.

Per class, a list of requirements written as short sentences:

    region in [eu, uk]            the deployment processes data in one of these regions
    certifications include hipaa_baa   (or `include [soc2, iso27001]`: all of them)
    retention_days <= 0           the provider keeps the data at most this many days
    trains_on_data = false        the provider may (not) train on the data
    zero_data_retention = true    a zero-data-retention agreement is (not) in place

A fact nobody stated never meets a requirement: an unknown region is not `eu`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from providers.facade import Facts

ATTRIBUTES = ("region", "certifications", "retention_days", "trains_on_data", "zero_data_retention")
_LIST = r"\[\s*([^\]]*)\]"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_PATTERNS = (
    ("region", "in", re.compile(rf"^region\s+in\s+{_LIST}$")),
    ("certifications", "include", re.compile(rf"^certifications\s+includes?\s+(?:{_LIST}|([a-z0-9_-]+))$")),
    ("retention_days", "<=", re.compile(r"^retention_days\s*<=\s*(\d{1,5})$")),
    ("trains_on_data", "=", re.compile(r"^trains_on_data\s*==?\s*(true|false)$")),
    ("zero_data_retention", "=", re.compile(r"^zero_data_retention\s*==?\s*(true|false)$")),
)
SYNTAX = (
    "write one of: region in [eu, us], certifications include hipaa_baa, retention_days <= 0, "
    "trains_on_data = false, zero_data_retention = true"
)


@dataclass(frozen=True, slots=True)
class Requirement:
    attribute: str
    op: str
    values: tuple[str, ...] = ()  # region in / certifications include
    number: int = 0  # retention_days <=
    flag: bool = False  # trains_on_data / zero_data_retention =

    @property
    def text(self) -> str:
        if self.attribute == "region":
            return f"region in [{', '.join(self.values)}]"
        if self.attribute == "certifications":
            listed = self.values[0] if len(self.values) == 1 else f"[{', '.join(self.values)}]"
            return f"certifications include {listed}"
        if self.attribute == "retention_days":
            return f"retention_days <= {self.number}"
        return f"{self.attribute} = {'true' if self.flag else 'false'}"

    def met(self, facts: Facts) -> bool:
        if self.attribute == "region":
            return facts.region in self.values
        if self.attribute == "certifications":
            return all(value in facts.certifications for value in self.values)
        if self.attribute == "retention_days":
            return facts.retention_days is not None and facts.retention_days <= self.number
        found = facts.trains_on_data if self.attribute == "trains_on_data" else facts.zero_data_retention
        return found is self.flag

    def found(self, facts: Facts) -> str:
        """What the facts say about this requirement's attribute, for explanations."""
        if self.attribute == "region":
            return f"region {facts.region}" if facts.region else "region unknown"
        if self.attribute == "certifications":
            have = ", ".join(sorted(facts.certifications))
            return f"certifications [{have}]" if have else "no certifications stated"
        if self.attribute == "retention_days":
            return "retention unknown" if facts.retention_days is None else f"retains {facts.retention_days} days"
        value = getattr(facts, self.attribute)
        return f"{self.attribute} unknown" if value is None else f"{self.attribute} = {str(value).lower()}"


def requirement_parse(text: Any) -> Requirement:
    """A requirement from its sentence; ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not text; {SYNTAX}")
    clean = " ".join(text.strip().split()).lower()
    for attribute, op, pattern in _PATTERNS:
        match = pattern.match(clean)
        if match is None:
            continue
        if op in ("in", "include"):
            raw = match.group(1) if match.group(1) is not None else match.group(2) if op == "include" else ""
            values = tuple(dict.fromkeys(v.strip() for v in (raw or "").split(",") if v.strip()))
            if not values:
                raise ValueError(f"{text!r} lists nothing")
            bad = [v for v in values if not _SLUG.match(v)]
            if bad:
                raise ValueError(f"{', '.join(bad)}: not a region or certification name")
            values = tuple(sorted(values))
            return Requirement(attribute, op, values=values)
        if op == "<=":
            return Requirement(attribute, op, number=int(match.group(1)))
        return Requirement(attribute, op, flag=match.group(1) == "true")
    raise ValueError(f"{text!r} is not a requirement; {SYNTAX}")


def requirements_normalize(value: Any, class_order: dict[str, int], add_problem: Any) -> dict[str, list[str]]:
    """The canonical `requirements` section: class -> requirement sentences, sorted and unique."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        add_problem("requirements", "expected a mapping of data class to a list of requirements")
        return {}
    out: dict[str, list[str]] = {}
    for cls in sorted(value, key=lambda c: class_order.get(c, 10**6) if isinstance(c, str) else 10**6):
        path = f"requirements.{cls}"
        if cls not in class_order:
            add_problem(path, f"unknown data class {cls!r}")
            continue
        items = value[cls]
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list):
            add_problem(path, "expected a list of requirements")
            continue
        texts: list[str] = []
        for index, item in enumerate(items):
            try:
                found = requirement_parse(item).text
            except ValueError as exc:
                add_problem(f"{path}[{index}]", str(exc))
                continue
            if found not in texts:
                texts.append(found)
        if texts:
            out[cls] = sorted(texts)
    return out


def requirements_compile(section: dict[str, list[str]] | None) -> dict[str, tuple[Requirement, ...]]:
    return {cls: tuple(requirement_parse(text) for text in texts) for cls, texts in (section or {}).items()}


def certifications_named(section: dict[str, list[str]] | None) -> set[str]:
    """Every certification the requirements name (checked against the vocabulary)."""
    named: set[str] = set()
    for requirement in (r for texts in (section or {}).values() for r in map(requirement_parse, texts)):
        if requirement.attribute == "certifications":
            named.update(requirement.values)
    return named
