"""Config-as-code sections for compliance: `certifications` (each organization's own terms
next to the built-in ones) and `compliance_facts` (what a provider or a deployment states).

    certifications:
    - {name: nhs_dspt, organization: acme, label: NHS DSP Toolkit}
    compliance_facts:
    - name: sim-openai            # a provider (of: provider) or a deployment (of: deployment)
      of: provider
      region: us
      region_name: us-east-1
      certifications: [iso27001, soc2]
      retention_days: 30
      trains_on_data: false
      review_due: '2027-06-30'
      evidence_url: https://trust.example.com/soc2
    - {name: gpt-4o-mini@sim-azure, of: deployment, region: eu, region_name: westeurope}

A fact left out of an entry is not stated (on a deployment: inherited from its provider).
Export writes only stated facts, so export -> apply -> export is exact. Pruning clears the
facts of a subject the file no longer lists (the history keeps what they were).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from console.models import Organization
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change, PlanContext
from providers.config import deployment_get, entry_key, provider_get
from providers.facts import facts_values
from providers.facts_services import SLUG_RE, certification_term_put, certification_term_remove, compliance_facts_set
from providers.models_compliance import BUILTIN_CERTIFICATIONS, FACT_FIELDS, REGIONS, CertificationTerm, ComplianceFacts

KINDS = ("provider", "deployment")
EMPTY: dict[str, Any] = {
    "region": "",
    "region_name": "",
    "certifications": None,
    "retention_days": None,
    "trains_on_data": None,
    "zero_data_retention": None,
    "review_due": None,
    "evidence_url": "",
}


def _bind(function: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(**kwargs)


class CertificationSection:
    name = "certifications"
    order = 31  # after the registry, before the facts that name its terms

    def existing_names(self) -> set[str]:
        return set(CertificationTerm.objects.values_list("slug", flat=True))

    def export(self) -> list[dict[str, Any]]:
        return [
            {"name": term.slug, "organization": term.organization.slug, "label": term.label}
            for term in CertificationTerm.objects.select_related("organization").order_by("organization__slug", "slug")
        ]

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("certifications: expected a list of entries")
            return []
        orgs = {org.slug: org for org in Organization.objects.all()}
        existing = {(t.organization.slug, t.slug): t for t in CertificationTerm.objects.select_related("organization")}
        changes: list[Change] = []
        seen: set[tuple[str, str]] = set()
        for index, entry in enumerate(entries):
            path = f"certifications[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{path}: expected a mapping of fields")
                continue
            found = [f"{path}.{key}: unknown field" for key in sorted(set(entry) - {"name", "organization", "label"})]
            slug, org_slug, label = entry.get("name"), entry.get("organization"), entry.get("label")
            if not isinstance(slug, str) or not SLUG_RE.match(slug) or slug in dict(BUILTIN_CERTIFICATIONS):
                found.append(f"{path}.name: a lower-case slug that is not built in")
            if org_slug not in orgs:
                found.append(f"{path}.organization: unknown organization {org_slug!r}")
            if not isinstance(label, str) or not label.strip() or len(label) > 100:
                found.append(f"{path}.label: a label of at most 100 characters")
            if (org_slug, slug) in seen:
                found.append(f"{path}.name: {slug!r} appears twice for {org_slug}")
            problems.extend(found)
            if found:
                continue
            seen.add((org_slug, slug))
            key = f"{org_slug}/{slug}"
            current = existing.get((org_slug, slug))
            if current is not None and current.label == label.strip():
                changes.append(Change(self.name, key, UNCHANGED))
                continue
            run = _bind(certification_term_put, organization=orgs[org_slug], slug=slug, label=label)
            changes.append(Change(self.name, key, CREATE if current is None else UPDATE, ("label",), run=run))
        if context.prune:
            for (org_slug, slug), term in sorted(existing.items()):
                if (org_slug, slug) not in seen:
                    run = _bind(certification_term_remove, organization=term.organization, slug=slug)
                    changes.append(Change(self.name, f"{org_slug}/{slug}", PRUNE, ("delete",), run=run))
        return changes


def _fact(name: str, value: Any) -> Any:
    """One fact from a file; ValueError says what is wrong."""
    if name == "region":
        if value not in REGIONS:
            raise ValueError(f"{value!r} is not one of {', '.join(REGIONS)}")
    elif name in ("region_name", "evidence_url"):
        if not isinstance(value, str) or len(value) > (100 if name == "region_name" else 500):
            raise ValueError(f"{value!r} is not text (at most {100 if name == 'region_name' else 500} characters)")
    elif name == "certifications":
        if not isinstance(value, list) or not all(isinstance(v, str) and SLUG_RE.match(v) for v in value):
            raise ValueError("expected a list of certification slugs")
        value = sorted(set(value))
    elif name == "retention_days":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
            raise ValueError(f"{value!r} is not a number of days from 0 to 36500")
    elif name in ("trains_on_data", "zero_data_retention"):
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not true or false")
    elif name == "review_due":
        if isinstance(value, date):
            value = value.isoformat()
        try:
            date.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return value


class ComplianceFactsSection:
    name = "compliance_facts"
    order = 32  # after providers and deployments, before routing (whose rules read the vocabulary)

    def existing_names(self) -> set[str]:
        return {f"{kind}:{name}" for kind, name in self._rows()}

    def _rows(self) -> dict[tuple[str, str], ComplianceFacts]:
        rows = {}
        # Named as the registry's sections name them: `name`, or `<slug>/<name>` for an organization's.
        for row in ComplianceFacts.objects.select_related("provider__organization", "deployment__organization"):
            if row.provider_id:
                owner = row.provider.organization
                subject = ("provider", entry_key(owner.slug if owner else None, row.provider.name))
            else:
                owner = row.deployment.organization
                subject = ("deployment", entry_key(owner.slug if owner else None, row.deployment.name))
            rows[subject] = row
        return rows

    def export(self) -> list[dict[str, Any]]:
        out = []
        for (kind, name), row in sorted(self._rows().items(), key=lambda item: (item[0][0] != "provider", item[0][1])):
            values = facts_values(row)
            if values:
                out.append({"name": name, "of": kind, **{key: values[key] for key in FACT_FIELDS if key in values}})
        return out

    def plan(self, entries: list[Any], *, context: PlanContext, problems: list[str]) -> list[Change]:
        if not isinstance(entries, list):
            problems.append("compliance_facts: expected a list of entries")
            return []
        names = {"provider": context.names_after("providers"), "deployment": context.names_after("deployments")}
        rows = self._rows()
        changes: list[Change] = []
        seen: set[tuple[str, str]] = set()
        for index, entry in enumerate(entries):
            path = f"compliance_facts[{index}]"
            if not isinstance(entry, Mapping):
                problems.append(f"{path}: expected a mapping of fields")
                continue
            found = [
                f"{path}.{key}: unknown field" for key in sorted(set(entry) - {"name", "of", *FACT_FIELDS}, key=str)
            ]
            kind, name = entry.get("of", "provider"), entry.get("name")
            if kind not in KINDS:
                found.append(f"{path}.of: provider or deployment")
            elif not isinstance(name, str) or name not in names[kind]:
                found.append(f"{path}.name: unknown {kind} {name!r}")
            elif (kind, name) in seen:
                found.append(f"{path}.name: {kind} {name!r} appears twice")
            values: dict[str, Any] = {}
            for key in FACT_FIELDS:
                if key in entry and entry[key] is not None:
                    try:
                        values[key] = _fact(key, entry[key])
                    except ValueError as exc:
                        found.append(f"{path}.{key}: {exc}")
            problems.extend(found)
            if found:
                continue
            seen.add((kind, name))
            current = facts_values(rows.get((kind, name)))
            if current == values:
                changes.append(Change(self.name, f"{kind}:{name}", UNCHANGED))
                continue
            detail = tuple(sorted(k for k in set(current) | set(values) if current.get(k) != values.get(k)))
            run = _bind(_facts_apply, kind=kind, name=name, values={**EMPTY, **values})
            action = CREATE if (kind, name) not in rows else UPDATE
            changes.append(Change(self.name, f"{kind}:{name}", action, detail, run=run))
        if context.prune:
            for (kind, name), row in sorted(rows.items()):
                if (kind, name) not in seen and facts_values(row):
                    run = _bind(_facts_apply, kind=kind, name=name, values=dict(EMPTY))
                    changes.append(Change(self.name, f"{kind}:{name}", PRUNE, ("clear",), run=run))
        return changes


def _facts_apply(*, kind: str, name: str, values: dict[str, Any]) -> None:
    if kind == "provider":
        compliance_facts_set(provider=provider_get(name), source="config", **values)
    else:
        compliance_facts_set(deployment=deployment_get(name), source="config", **values)


def compliance_sections() -> list[Any]:
    return [CertificationSection(), ComplianceFactsSection()]
