"""Effective compliance facts: a deployment's own over its provider's over the catalog default.

`Facts` is the frozen value the registry snapshot carries for every deployment, so
the data plane decides on facts without a database query; `facts_record` is what a
usage record keeps of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from providers.models_compliance import FACT_FIELDS


@dataclass(frozen=True, slots=True)
class Facts:
    region: str = ""  # "" unknown
    region_name: str = ""
    certifications: frozenset[str] = frozenset()
    retention_days: int | None = None  # 0: nothing kept; None: unknown
    trains_on_data: bool | None = None  # None: unknown
    zero_data_retention: bool | None = None
    review_due: date | None = None
    evidence_url: str = ""
    # Where each field's value comes from: "deployment", "provider" or "catalog".
    sources: tuple[tuple[str, str], ...] = ()
    record: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def stale(self, today: date) -> bool:
        return self.review_due is not None and self.review_due < today

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, "")


UNKNOWN = Facts()

# Public and true of every self-hosted open-weight deployment: the data stays on the
# operator's machines, nothing is kept by a third party and nobody trains on it.
SELF_HOSTED_DEFAULTS: dict[str, Any] = {
    "region": "on-prem",
    "retention_days": 0,
    "trains_on_data": False,
    "zero_data_retention": True,
}


def _given(name: str, value: Any) -> bool:
    if name == "certifications":
        return value is not None
    return value not in ("", None)


def facts_values(row: Any) -> dict[str, Any]:
    """The stated values of one ComplianceFacts row (or {} for none), JSON-friendly."""
    if row is None:
        return {}
    out = {}
    for name in FACT_FIELDS:
        value = getattr(row, name)
        if _given(name, value):
            out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def facts_resolve(
    *, deployment: dict[str, Any] | None, provider: dict[str, Any] | None, self_hosted: bool = False
) -> Facts:
    """Each field from the deployment's own facts, else the provider's, else the catalog default."""
    layers = [("deployment", deployment or {}), ("provider", provider or {})]
    if self_hosted:
        layers.append(("catalog", SELF_HOSTED_DEFAULTS))
    values: dict[str, Any] = {}
    sources: list[tuple[str, str]] = []
    for name in FACT_FIELDS:
        for source, layer in layers:
            value = layer.get(name)
            if _given(name, value):
                values[name] = value
                sources.append((name, source))
                break
    if not values:
        return UNKNOWN
    review = values.get("review_due")
    if isinstance(review, str):
        review = date.fromisoformat(review)
    facts = Facts(
        region=values.get("region", ""),
        region_name=values.get("region_name", ""),
        certifications=frozenset(values.get("certifications") or ()),
        retention_days=values.get("retention_days"),
        trains_on_data=values.get("trains_on_data"),
        zero_data_retention=values.get("zero_data_retention"),
        review_due=review,
        evidence_url=values.get("evidence_url", ""),
        sources=tuple(sources),
    )
    facts.record.update(facts_record(facts))
    return facts


def facts_record(facts: Facts) -> dict[str, Any]:
    """What a usage record keeps: the terms the request was processed under."""
    return {
        "region": facts.region,
        "region_name": facts.region_name,
        "certifications": sorted(facts.certifications),
        "retention_days": facts.retention_days,
        "trains_on_data": facts.trains_on_data,
        "zero_data_retention": facts.zero_data_retention,
        "review_due": facts.review_due.isoformat() if facts.review_due else None,
    }
