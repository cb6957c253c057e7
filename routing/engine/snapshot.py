"""The compiled routing picture every gateway process holds in memory.

`routing_build` reads, in three queries, the live policy version of every
organization, the teams its rules name and the deployments' breaker settings,
and compiles them against the registry snapshot: route targets become
candidate tuples (deployment + model + weight + breaker), the compliance matrix
becomes per-class candidate lists, rules become predicates. The result is
immutable and swapped whole when the change feed says "routing" (or "catalog")
changed; a request only ever reads it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from evals.facade import scores_latest
from providers.snapshot import CatalogSnapshot, DeploymentInfo, ModelInfo
from routing.engine.rules import CompiledRule, rule_compile
from routing.engine.state import DEFAULT_BREAKER, Breaker
from routing.policy.document import DETECTORS, VALIDATOR_DEFAULTS, policy_empty, policy_normalize
from routing.policy.requirements import Requirement, requirements_compile

logger = logging.getLogger(__name__)

PLAIN = "model"  # kind of the implicit route of a plain model name


@dataclass(frozen=True, slots=True)
class Candidate:
    deployment: DeploymentInfo
    model: ModelInfo
    weight: int
    breaker: Breaker
    input_price: float  # per 1M tokens, for ordering only (money stays Decimal in settle)
    output_price: float

    @property
    def id(self) -> int:
        return self.deployment.id


@dataclass(frozen=True, slots=True)
class Breakers:
    """Each deployment's ejection settings, and the default for those without a row."""

    by_deployment: Mapping[int, Breaker]
    default: Breaker = DEFAULT_BREAKER

    def get(self, deployment_id: int, fallback: Breaker | None = None) -> Breaker:
        return self.by_deployment.get(deployment_id, self.default)


@dataclass(frozen=True, slots=True)
class Validators:
    json: bool
    regex: re.Pattern[str] | None
    min_length: int
    max_length: int
    refusal: bool
    min_confidence: float | None


@dataclass(frozen=True, slots=True)
class Layer:
    name: str  # the model or route the layer calls
    route: CompiledRoute
    validators: Validators


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    kind: str  # standard | cascade | model
    strategy: str
    candidates: tuple[Candidate, ...]
    by_class: Mapping[str, tuple[Candidate, ...]]  # compliant candidates per data class
    fallbacks: Mapping[str, str]  # error class -> destination name
    max_attempts: int  # 0: the gateway default
    exploration: float
    layers: tuple[Layer, ...] = ()
    compress_model: str = ""
    keep_turns: int = 0
    description: str = ""
    deadline: float = 0.0  # seconds for the whole request; 0: the gateway default
    max_attempts_total: int = 0  # across attempts and fallbacks; 0: the gateway default
    ttft_timeout: float = 0.0  # 0: the deployment's, else the gateway default
    stream_idle_timeout: float = 0.0
    max_ejection_percent: int | None = None  # None: the gateway default
    # Candidates below the route's `min_score` (deployment id -> why), skipped like the matrix.
    score_skipped: Mapping[int, str] = field(default_factory=dict)

    def compliant(self, data_class: str) -> tuple[Candidate, ...]:
        found = self.by_class.get(data_class)
        if found is not None:
            return found
        if self.score_skipped:
            return tuple(c for c in self.candidates if c.id not in self.score_skipped)
        return self.candidates

    def models(self) -> list[ModelInfo]:
        seen: dict[str, ModelInfo] = {}
        for candidate in self.candidates:
            seen.setdefault(candidate.model.name, candidate.model)
        for layer in self.layers:
            for model in layer.route.models():
                seen.setdefault(model.name, model)
        return list(seen.values())


@dataclass(slots=True)
class OrgPolicy:
    """One organization's compiled policy. Plain-model routes are compiled on first use."""

    organization_id: int
    version: int  # 0: nothing configured
    class_rank: dict[str, int]
    class_labels: dict[str, str]
    top_class: str
    detectors: tuple[tuple[str, str], ...]  # (kind, class) of the detectors that are on
    detect_needed: bool  # whether classes change routing at all (matrix or rules use them)
    routes: dict[str, CompiledRoute]
    rules: tuple[CompiledRule, ...]
    default_route: str
    approvals: dict[str, frozenset[str]]
    unlisted: frozenset[str]
    catalog: CatalogSnapshot
    breakers: Mapping[int, Breaker] | Breakers
    # Attribute rules per data class: what a deployment's compliance facts must say.
    requirements: Mapping[str, tuple[Requirement, ...]] = field(default_factory=dict)
    _plain: dict[str, CompiledRoute | None] = field(default_factory=dict)

    def rank(self, data_class: str) -> int:
        found = self.class_rank.get(data_class)
        # A class this organization does not define is treated as its most sensitive one.
        return found if found is not None else self.class_rank[self.top_class]

    def highest(self, *classes: str) -> str:
        best = ""
        best_rank = -1
        for cls in classes:
            if cls:
                rank = self.rank(cls)
                if rank > best_rank:
                    best, best_rank = (cls if cls in self.class_rank else self.top_class), rank
        return best

    def approved(self, candidate: Candidate) -> frozenset[str]:
        found = self.approvals.get(candidate.deployment.name)
        if found is None:
            found = self.approvals.get(candidate.model.name)
        return self.unlisted if found is None else found

    def unmet(self, candidate: Candidate, data_class: str) -> Requirement | None:
        """The first of the class's requirements the candidate's facts do not meet."""
        for requirement in self.requirements.get(data_class, ()):
            if not requirement.met(candidate.deployment.facts):
                return requirement
        return None

    def destination(self, name: str) -> CompiledRoute | None:
        """A route by name, else the implicit route of a model with that name."""
        route = self.routes.get(name)
        if route is not None:
            return route
        return self.model_route(name)

    def model_route(self, name: str) -> CompiledRoute | None:
        if name in self._plain:
            return self._plain[name]
        model = self.catalog.model(name)
        route = None
        if model is not None:
            candidates = tuple(
                _candidate(d, model, d.weight, self.breakers) for d in model.deployments_for(self.organization_id)
            )
            route = CompiledRoute(
                name=name,
                kind=PLAIN,
                strategy="weighted",
                candidates=candidates,
                by_class=self._by_class(candidates),
                fallbacks={},
                max_attempts=0,
                exploration=0.0,
            )
        if len(self._plain) > 10_000:
            self._plain.clear()
        self._plain[name] = route
        return route

    def _by_class(self, candidates: tuple[Candidate, ...]) -> dict[str, tuple[Candidate, ...]]:
        if not self.approvals and len(self.unlisted) == len(self.class_rank) and not self.requirements:
            return {}  # no matrix: every candidate serves every class
        return {
            cls: tuple(c for c in candidates if cls in self.approved(c) and self.unmet(c, cls) is None)
            for cls in self.class_rank
        }


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    policies: Mapping[int, OrgPolicy]
    breakers: Mapping[int, Breaker] | Breakers
    catalog: CatalogSnapshot
    namespace: str = "default"
    _defaults: dict[int, OrgPolicy] = field(default_factory=dict)

    def policy(self, organization_id: int) -> OrgPolicy:
        found = self.policies.get(organization_id)
        if found is not None:
            return found
        found = self._defaults.get(organization_id)
        if found is None:
            if len(self._defaults) > 10_000:
                self._defaults.clear()
            found = self._defaults[organization_id] = policy_compile(
                organization_id=organization_id,
                version=0,
                document=EMPTY,
                catalog=self.catalog,
                breakers=self.breakers,
                team_ids={},
            )
        return found


EMPTY = policy_normalize(policy_empty())


def _candidate(
    deployment: DeploymentInfo,
    model: ModelInfo,
    weight: int,
    breakers: Mapping[int, Breaker] | Breakers,
    ejection: Mapping[str, Any] | None = None,
) -> Candidate:
    breaker = breakers.get(deployment.id, DEFAULT_BREAKER)
    if ejection and (ejection.get("error_rate") or ejection.get("min_requests")):
        # The route's own threshold and volume apply to what its requests report.
        breaker = replace(
            breaker,
            error_rate=ejection.get("error_rate") or breaker.error_rate,
            threshold=ejection.get("min_requests") or breaker.threshold,
        )
    return Candidate(
        deployment=deployment,
        model=model,
        weight=weight,
        breaker=breaker,
        input_price=float(model.price.input),
        output_price=float(model.price.output),
    )


def _validators(data: Mapping[str, Any]) -> Validators:
    values = {**VALIDATOR_DEFAULTS, **data}
    return Validators(
        json=values["json"],
        regex=re.compile(values["regex"]) if values["regex"] else None,
        min_length=values["min_length"],
        max_length=values["max_length"],
        refusal=values["refusal"],
        min_confidence=values["min_confidence"],
    )


def policy_compile(
    *,
    organization_id: int,
    version: int,
    document: Mapping[str, Any],
    catalog: CatalogSnapshot,
    breakers: Mapping[int, Breaker] | Breakers,
    team_ids: Mapping[str, int],
    scores: Mapping[tuple[str, str], Decimal] | None = None,
) -> OrgPolicy:
    """Compile a normalized document against the registry snapshot.

    Names the registry no longer knows (a deleted deployment, a retired model) are
    skipped rather than failing the whole organization's routing.
    """
    # The organization's view: its prices, its private models, nothing served only for others.
    catalog = catalog.for_organization(organization_id)
    classes = document["data_classes"]
    class_rank = {c["name"]: c["rank"] for c in classes}
    settings = document["settings"]
    unlisted_max = settings["unlisted_max_class"]
    if unlisted_max:
        limit = class_rank[unlisted_max]
        unlisted = frozenset(c for c, r in class_rank.items() if r <= limit)
    else:
        unlisted = frozenset(class_rank)
    approvals = {subject: frozenset(approved) for subject, approved in document["matrix"].items()}
    rules = tuple(rule_compile(r, team_ids=team_ids) for r in document["rules"] if r["enabled"])
    requirements = requirements_compile(document.get("requirements"))
    policy = OrgPolicy(
        organization_id=organization_id,
        version=version,
        class_rank=class_rank,
        class_labels={c["name"]: c["label"] for c in classes},
        top_class=max(class_rank, key=class_rank.__getitem__),
        detectors=tuple((kind, document["detectors"][kind]) for kind in DETECTORS if document["detectors"][kind]),
        detect_needed=bool(approvals or requirements)
        or len(unlisted) < len(class_rank)
        or any(r.data_classes for r in rules),
        routes={},
        rules=rules,
        default_route=settings["default_route"],
        approvals=approvals,
        unlisted=unlisted,
        catalog=catalog,
        breakers=breakers,
        requirements=requirements,
    )
    by_name = {d.name: (d, m) for m in catalog.models.values() for d in m.deployments}
    standard = [r for r in document["routes"] if r["kind"] != "cascade"]
    cascades = [r for r in document["routes"] if r["kind"] == "cascade"]
    for route in standard:
        candidates: list[Candidate] = []
        seen: set[int] = set()
        for target in route["targets"]:
            if "deployment" in target:
                found = by_name.get(target["deployment"])
                pairs = [found] if found is not None and _visible(found[0], organization_id) else []
            else:
                model = catalog.model(target["model"])
                pairs = [(d, model) for d in model.deployments_for(organization_id)] if model is not None else []
            for deployment, model in pairs:
                if deployment.id in seen:
                    continue
                seen.add(deployment.id)
                weight = target["weight"] * max(deployment.weight, 1) if "model" in target else target["weight"]
                candidates.append(_candidate(deployment, model, weight, breakers, route.get("ejection")))
        compiled = tuple(candidates)
        skipped = _score_skipped(compiled, route.get("min_score"), scores or {})
        by_class = policy._by_class(compiled)
        if skipped:
            by_class = {cls: tuple(c for c in by_class.get(cls, compiled) if c.id not in skipped) for cls in class_rank}
        policy.routes[route["name"]] = CompiledRoute(
            name=route["name"],
            kind="standard",
            strategy=route["strategy"],
            candidates=compiled,
            by_class=by_class,
            score_skipped=skipped,
            fallbacks={f["when"]: f["route"] for f in route["fallbacks"]},
            max_attempts=route["max_attempts"],
            exploration=route["exploration"],
            description=route["description"],
            **_reliability(route),
        )
    for route in cascades:
        layers = []
        for layer in route["layers"]:
            name = layer.get("route") or layer.get("model")
            inner = policy.routes.get(name) if "route" in layer else policy.model_route(name)
            if inner is None:
                logger.warning(
                    "organization %s route %s: layer %s is gone; skipped", organization_id, route["name"], name
                )
                continue
            layers.append(Layer(name=name, route=inner, validators=_validators(layer["validators"])))
        policy.routes[route["name"]] = CompiledRoute(
            name=route["name"],
            kind="cascade",
            strategy=route["strategy"],
            candidates=(),
            by_class={},
            fallbacks={f["when"]: f["route"] for f in route["fallbacks"]},
            max_attempts=route["max_attempts"],
            exploration=route["exploration"],
            layers=tuple(layers),
            compress_model=route["compress"]["model"],
            keep_turns=route["compress"]["keep_turns"],
            description=route["description"],
            **_reliability(route),
        )
    return policy


def _score_skipped(
    candidates: tuple[Candidate, ...], min_score: Mapping[str, Any] | None, scores: Mapping[tuple[str, str], Decimal]
) -> dict[int, str]:
    """The candidates whose model's latest score on the route's suite is below its
    `min_score` (or that have none), with the reason the dry run shows."""
    if not min_score:
        return {}
    suite = min_score["suite"]
    need = Decimal(str(min_score["score"]))
    skipped = {}
    for candidate in candidates:
        got = scores.get((suite, candidate.model.name))
        if got is None:
            skipped[candidate.id] = f"{candidate.model.name} has no score on {suite} (the route needs {need:.0%})"
        elif got < need:
            skipped[candidate.id] = f"{candidate.model.name} scores {got:.0%} on {suite}, below the route's {need:.0%}"
    return skipped


def _reliability(route: Mapping[str, Any]) -> dict[str, Any]:
    ejection = route.get("ejection") or {}
    return {
        "deadline": route.get("deadline") or 0.0,
        "max_attempts_total": route.get("max_attempts_total") or 0,
        "ttft_timeout": route.get("ttft_timeout") or 0.0,
        "stream_idle_timeout": route.get("stream_idle_timeout") or 0.0,
        "max_ejection_percent": ejection.get("max_percent"),
    }


def _visible(deployment: DeploymentInfo, organization_id: int) -> bool:
    return deployment.organization_id is None or deployment.organization_id == organization_id


def breakers_build(rows: Any) -> Breakers:
    """Ejection settings from the stored DeploymentPolicy rows and the gateway defaults."""
    from routing.conf import routing_conf

    conf = routing_conf()
    default = Breaker(
        threshold=conf.ejection_min_requests,
        error_rate=conf.ejection_error_rate,
        max_ejection=conf.ejection_max_seconds,
    )
    by_deployment = {
        p.deployment_id: replace(default, threshold=p.failure_threshold, window=p.failure_window, cooldown=p.cooldown)
        for p in rows
    }
    return Breakers(by_deployment, default)


def routing_build(catalog: CatalogSnapshot, *, organization_id: int | None = None) -> RoutingSnapshot:
    """Read live policies and breaker settings from the database and compile them
    (every organization's, or one's for a console dry run)."""
    from console.models import Team
    from routing.models import DeploymentPolicy, PolicyState, PolicyVersion, RoutingInstall

    install = RoutingInstall.objects.order_by("id").first()
    if install is None:
        RoutingInstall.objects.create()
        # Processes starting together may each create a row: all settle on the first.
        install = RoutingInstall.objects.order_by("id").first()
    breakers = breakers_build(DeploymentPolicy.objects.all())
    live_versions = PolicyVersion.objects.filter(state=PolicyState.LIVE)
    if organization_id is not None:
        live_versions = live_versions.filter(organization_id=organization_id)
    live = list(live_versions.only("organization_id", "number", "document"))
    teams: dict[int, dict[str, int]] = {}
    wanted = [v.organization_id for v in live if any(r.get("teams") for r in v.document.get("rules", ()))]
    if wanted:
        for team_id, org_id, name in Team.objects.filter(organization_id__in=wanted).values_list(
            "id", "organization_id", "name"
        ):
            teams.setdefault(org_id, {})[name] = team_id
    # Evaluation scores, read only when a live policy has a route that requires one.
    scored = [v.organization_id for v in live if any(r.get("min_score") for r in v.document.get("routes", ()))]
    scores = scores_latest(organization_ids=scored) if scored else {}
    policies = {}
    for version in live:
        try:
            policies[version.organization_id] = policy_compile(
                organization_id=version.organization_id,
                version=version.number,
                document=version.document,
                catalog=catalog,
                breakers=breakers,
                team_ids=teams.get(version.organization_id, {}),
                scores=scores.get(version.organization_id),
            )
        except (KeyError, TypeError, ValueError, re.error):
            logger.exception(
                "organization %s: live policy v%s does not compile; using defaults",
                version.organization_id,
                version.number,
            )
    return RoutingSnapshot(policies=policies, breakers=breakers, catalog=catalog, namespace=install.namespace)
