"""Guard policies and recognizers in the YAML configuration (`export_config` / `apply_config`).

    guard_policies:
    - name: acme                   # "<org>", "<org>/team:<team name>" or "<org>/key:<key prefix>"
      organization: acme
      team: Legal                  # optional
      key: sk-gh-AbCd1234          # optional (a key's prefix)
      policy:                      # see guardrails/policy.py
        pii: {"*": {EMAIL: tokenize}, pci: {CREDIT_CARD: block}}
        injection: {threshold: 0.8, action: block}
    guard_recognizers:
    - name: acme/EMPLOYEE_ID       # "<org>/<ENTITY>"
      organization: acme
      entity: EMPLOYEE_ID
      pattern: '\\bEMP-\\d{6}\\b'
      checksum: ""                 # "", luhn or mod97
      context: [employee]
      score: 0.8
      enabled: true

Writes go through the services (audited, announced on topic "guard"). Pruning
deletes layers and recognizers a present section no longer lists. The section
objects follow the shared config machinery (`gatehouse/config.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.models import ApiKey, Organization, Team
from gatehouse.config import CREATE, PRUNE, UNCHANGED, UPDATE, Change
from guardrails import services
from guardrails.detectors import CHECKSUMS
from guardrails.models import GuardPolicy, GuardRecognizer
from guardrails.policy import PolicyError, policy_parse


def _label(org: str, team: str | None, key: str | None) -> str:
    if key:
        return f"{org}/key:{key}"
    if team:
        return f"{org}/team:{team}"
    return org


def _bind(function: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
    return lambda: function(**kwargs)


def _entries(section: str, entries: Any, problems: list[str]) -> list[tuple[str, dict]]:
    if not isinstance(entries, list):
        problems.append(f"{section}: expected a list of entries")
        return []
    found = []
    names = set()
    for index, entry in enumerate(entries):
        path = f"{section}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            problems.append(f"{path}: a mapping with a name")
            continue
        if entry["name"] in names:
            problems.append(f"{path}.name: {entry['name']!r} appears twice")
            continue
        names.add(entry["name"])
        found.append((path, entry))
    return found


class GuardPolicySection:
    name = "guard_policies"
    order = 38

    def existing_names(self) -> set[str]:
        return {self._label(p) for p in GuardPolicy.objects.select_related("organization", "team", "key")}

    @staticmethod
    def _label(policy: GuardPolicy) -> str:
        return _label(
            policy.organization.slug,
            policy.team.name if policy.team_id else None,
            policy.key.prefix if policy.key_id else None,
        )

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for policy in GuardPolicy.objects.select_related("organization", "team", "key"):
            row: dict[str, Any] = {"name": self._label(policy), "organization": policy.organization.slug}
            if policy.team_id:
                row["team"] = policy.team.name
            if policy.key_id:
                row["key"] = policy.key.prefix
            row["policy"] = policy.document
            rows.append(row)
        return sorted(rows, key=lambda r: r["name"])

    def plan(self, entries: list[Any], *, context: Any, problems: list[str]) -> list[Change]:
        existing = {self._label(p): p for p in GuardPolicy.objects.select_related("organization", "team", "key")}
        changes: list[Change] = []
        declared = set()
        for path, entry in _entries(self.name, entries, problems):
            organization = Organization.objects.filter(slug=entry.get("organization")).first()
            if organization is None:
                problems.append(f"{path}.organization: unknown organization {entry.get('organization')!r}")
                continue
            team = key = None
            if entry.get("team") is not None:
                team = Team.objects.filter(organization=organization, name=entry["team"]).first()
                if team is None:
                    problems.append(f"{path}.team: no team {entry['team']!r} in {organization.slug}")
                    continue
            if entry.get("key") is not None:
                key = ApiKey.objects.filter(organization=organization, prefix=entry["key"]).first()
                if key is None:
                    problems.append(f"{path}.key: no key with prefix {entry['key']!r} in {organization.slug}")
                    continue
            if team is not None and key is not None:
                problems.append(f"{path}: a layer names a team or a key, not both")
                continue
            label = _label(organization.slug, entry.get("team"), entry.get("key"))
            if entry["name"] != label:
                problems.append(f"{path}.name: expected {label!r} for this scope")
                continue
            try:
                document = policy_parse(entry.get("policy") or {})
            except PolicyError as exc:
                problems.append(f"{path}.policy: {exc}")
                continue
            declared.add(label)
            current = existing.get(label)
            if current is not None and current.document == document:
                changes.append(Change(self.name, label, UNCHANGED))
                continue
            run = _bind(services.policy_set, organization=organization, team=team, key=key, document=document)
            changes.append(Change(self.name, label, UPDATE if current else CREATE, run=run))
        if context.prune:
            for label, policy in sorted(existing.items()):
                if label not in declared:
                    changes.append(Change(self.name, label, PRUNE, run=_bind(services.policy_delete, policy=policy)))
        return changes


class GuardRecognizerSection:
    name = "guard_recognizers"
    order = 37

    def existing_names(self) -> set[str]:
        return {
            f"{slug}/{entity}" for slug, entity in GuardRecognizer.objects.values_list("organization__slug", "entity")
        }

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for recognizer in GuardRecognizer.objects.select_related("organization").order_by(
            "organization__slug", "entity"
        ):
            rows.append(
                {
                    "name": f"{recognizer.organization.slug}/{recognizer.entity}",
                    "organization": recognizer.organization.slug,
                    "entity": recognizer.entity,
                    "pattern": recognizer.pattern,
                    "checksum": recognizer.checksum,
                    "context": recognizer.context_words,
                    "score": recognizer.score,
                    "enabled": recognizer.enabled,
                }
            )
        return rows

    def plan(self, entries: list[Any], *, context: Any, problems: list[str]) -> list[Change]:
        existing = {
            f"{r.organization.slug}/{r.entity}": r for r in GuardRecognizer.objects.select_related("organization")
        }
        changes: list[Change] = []
        declared = set()
        for path, entry in _entries(self.name, entries, problems):
            organization = Organization.objects.filter(slug=entry.get("organization")).first()
            if organization is None:
                problems.append(f"{path}.organization: unknown organization {entry.get('organization')!r}")
                continue
            entity = str(entry.get("entity", "")).upper()
            label = f"{organization.slug}/{entity}"
            if entry["name"] != label:
                problems.append(f"{path}.name: expected {label!r}")
                continue
            checksum = entry.get("checksum") or ""
            context_words = entry.get("context") or []
            score = entry.get("score", 0.8)
            enabled = entry.get("enabled", True)
            if checksum and checksum not in CHECKSUMS:
                problems.append(f"{path}.checksum: one of {', '.join(CHECKSUMS)} or empty")
                continue
            if not isinstance(context_words, list) or not all(isinstance(w, str) for w in context_words):
                problems.append(f"{path}.context: a list of words")
                continue
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score <= 1:
                problems.append(f"{path}.score: a number above 0 and at most 1")
                continue
            if not isinstance(enabled, bool):
                problems.append(f"{path}.enabled: true or false")
                continue
            if not isinstance(entry.get("pattern"), str):
                problems.append(f"{path}.pattern: a regular expression")
                continue
            declared.add(label)
            fields = {
                "pattern": entry["pattern"],
                "checksum": checksum,
                "context": ",".join(w.strip().lower() for w in context_words if w.strip()),
                "score": float(score),
            }
            current = existing.get(label)
            if current is None:
                run = _bind(services.recognizer_create, organization=organization, entity=entity, **fields)
                if not enabled:
                    run = _create_disabled(organization=organization, entity=entity, fields=fields)
                changes.append(Change(self.name, label, CREATE, run=run))
            elif {n: getattr(current, n) for n in fields} == fields and current.enabled == enabled:
                changes.append(Change(self.name, label, UNCHANGED))
            else:
                run = _bind(services.recognizer_update, recognizer=current, enabled=enabled, **fields)
                changes.append(Change(self.name, label, UPDATE, run=run))
        if context.prune:
            for label, recognizer in sorted(existing.items()):
                if label not in declared:
                    run = _bind(services.recognizer_delete, recognizer=recognizer)
                    changes.append(Change(self.name, label, PRUNE, run=run))
        return changes


def _create_disabled(*, organization: Organization, entity: str, fields: dict[str, Any]) -> Callable[[], Any]:
    def run() -> None:
        recognizer = services.recognizer_create(organization=organization, entity=entity, **fields)
        services.recognizer_update(recognizer=recognizer, enabled=False, **fields)

    return run


def config_sections() -> list:
    return [GuardRecognizerSection(), GuardPolicySection()]
