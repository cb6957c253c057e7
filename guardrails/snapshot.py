"""An immutable, in-process picture of every organization's guard configuration.

Built from the database in one go (`GuardSnapshot.build()`), swapped whole by the
`Guard` when the change feed names topic "guard". Resolving (organization, team,
key, data class) to a `CompiledPolicy` is memoized inside the snapshot, so the
hot path reads dictionaries only.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from guardrails.engine import CompiledPolicy
from guardrails.patterns import CustomRecognizer, custom_pattern_compile
from guardrails.policy import policy_merge


@dataclass(frozen=True)
class OrganizationGuard:
    organization_id: int
    base: Mapping[str, Any]
    teams: Mapping[int, Mapping[str, Any]]
    keys: Mapping[int, Mapping[str, Any]]
    custom: tuple[CustomRecognizer, ...]
    hash_salt: bytes


@dataclass(frozen=True)
class GuardSnapshot:
    organizations: Mapping[int, OrganizationGuard]
    secret: bytes
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def build(cls, *, organization_id: int | None = None) -> GuardSnapshot:
        """Every organization's configuration (or one organization's, for console previews)."""
        from guardrails.models import GuardPolicy, GuardRecognizer

        policies = GuardPolicy.objects.all()
        recognizers = GuardRecognizer.objects.filter(enabled=True)
        if organization_id is not None:
            policies = policies.filter(organization_id=organization_id)
            recognizers = recognizers.filter(organization_id=organization_id)

        secret = hashlib.sha256(("gatehouse-guard:" + settings.SECRET_KEY).encode()).digest()
        layers: dict[int, dict[str, Any]] = {}
        for row in policies.values("organization_id", "team_id", "key_id", "document"):
            org = layers.setdefault(row["organization_id"], {"base": {}, "teams": {}, "keys": {}})
            if row["key_id"]:
                org["keys"][row["key_id"]] = row["document"]
            elif row["team_id"]:
                org["teams"][row["team_id"]] = row["document"]
            else:
                org["base"] = row["document"]
        customs: dict[int, list[CustomRecognizer]] = {}
        for row in recognizers.values("organization_id", "entity", "pattern", "checksum", "context", "score"):
            try:
                pattern = custom_pattern_compile(row["pattern"])
            except ValueError:
                continue  # services validate on save; an old bad row must not stop the gateway
            customs.setdefault(row["organization_id"], []).append(
                CustomRecognizer(
                    entity=row["entity"],
                    pattern=pattern,
                    checksum=row["checksum"],
                    context=tuple(w.strip().lower() for w in row["context"].split(",") if w.strip()),
                    score=row["score"],
                )
            )
        organizations = {}
        for org_id in set(layers) | set(customs):
            org = layers.get(org_id, {"base": {}, "teams": {}, "keys": {}})
            organizations[org_id] = OrganizationGuard(
                organization_id=org_id,
                base=org["base"],
                teams=org["teams"],
                keys=org["keys"],
                custom=tuple(customs.get(org_id, ())),
                hash_salt=hmac.new(secret, f"hash:{org_id}".encode(), hashlib.sha256).digest(),
            )
        return cls(organizations=organizations, secret=secret)

    def policy(
        self, *, organization_id: int, team_id: int | None, key_id: int | None, data_class: str
    ) -> CompiledPolicy:
        cache_key = (organization_id, team_id, key_id, data_class or "*")
        compiled = self._compiled.get(cache_key)
        if compiled is not None:
            return compiled
        org = self.organizations.get(organization_id)
        if org is None:
            compiled = CompiledPolicy.build(
                policy_merge(),
                data_class,
                (),
                hmac.new(self.secret, f"hash:{organization_id}".encode(), hashlib.sha256).digest(),
            )
        else:
            layers = [org.base]
            if team_id is not None and team_id in org.teams:
                layers.append(org.teams[team_id])
            if key_id is not None and key_id in org.keys:
                layers.append(org.keys[key_id])
            compiled = CompiledPolicy.build(policy_merge(*layers), data_class, org.custom, org.hash_salt)
        with self._lock:
            if len(self._compiled) > 50_000:
                self._compiled.clear()
            self._compiled[cache_key] = compiled
        return compiled
