"""The dry run: what the gateway would do with a request, and why, without calling
any provider. It runs the same classify and route code as the data plane and
reads deployment health without changing it (no round-robin ticket is taken,
no probe is claimed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from console.keycache import KeyContext
from routing.engine.snapshot import Candidate, CompiledRoute, OrgPolicy
from routing.engine.state import HEALTHY, RoutingState
from routing.errors import GatewayError
from routing.pipeline.classify import HEADER, classify
from routing.pipeline.context import RequestContext
from routing.pipeline.route import RoutePlan, order_candidates, route_resolve
from routing.pipeline.validate import validate_chat


@dataclass
class CandidateRow:
    deployment: str
    model: str
    provider: str
    weight: int
    position: int | None  # 1-based place in the order; None when excluded
    reason: str = ""  # why excluded
    status: str = "healthy"
    terms: str = ""  # the deployment's compliance facts in short: region, certifications, retention


@dataclass
class RouteView:
    name: str
    kind: str
    strategy: str
    rows: list[CandidateRow] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)
    validators: str = ""
    panic: bool = False  # every candidate ejected: the route uses them anyway


@dataclass
class Explanation:
    data_class: str = ""
    sources: list[str] = field(default_factory=list)
    detected: list[str] = field(default_factory=list)
    rule: str = ""
    rules_checked: list[tuple[str, bool, str]] = field(default_factory=list)  # name, matched, conditions
    route: str = ""
    how: str = ""
    policy_version: int = 0
    routes: list[RouteView] = field(default_factory=list)
    error: dict[str, Any] | None = None


def _route_view(
    policy: OrgPolicy,
    route: CompiledRoute,
    plan: RoutePlan,
    *,
    data_class: str,
    capability: str,
    stream: bool,
    state: RoutingState,
) -> RouteView:
    view = RouteView(name=route.name, kind=route.kind, strategy=route.strategy, fallbacks=dict(route.fallbacks))
    candidates = route.candidates
    health = state.inspect([c.id for c in candidates])
    now = state.now()
    compliant = {c.id for c in route.compliant(data_class)}
    eligible = tuple(c for c in candidates if capability in c.model.capabilities and c.id in compliant)
    found_order = order_candidates(route, eligible, health, ticket=0, stream=stream, facts=plan.facts, now=now)
    view.panic = found_order.panic
    readmitted = {c.id for c in found_order.readmitted}
    position = {c.id: index for index, c in enumerate(found_order.ordered, start=1)}
    for candidate in candidates:
        row = _row(candidate, position.get(candidate.id))
        found = health.get(candidate.id, HEALTHY)
        row.status = found.status(now)
        if capability not in candidate.model.capabilities:
            row.reason = f"{candidate.model.name} does not support {capability}"
        elif candidate.id in route.score_skipped:
            row.reason = route.score_skipped[candidate.id]
        elif candidate.id not in compliant:
            row.reason = _compliance_reason(policy, candidate, data_class)
        elif found_order.panic and row.status != "healthy":
            row.reason = "ejected, but every candidate is: used anyway (panic mode)"
        elif candidate.id in readmitted:
            row.reason = "ejected, but used: the route's max ejection percent is reached"
        elif row.status == "ejected":
            row.reason = f"ejected for {found.open_until - now:.0f}s more: its error rate crossed the threshold"
        elif row.status == "half_open":
            row.reason = "ejection over: the next request probes it"
        elif candidate.weight <= 0:
            row.reason = "weight 0"
        view.rows.append(row)
    view.rows.sort(key=lambda r: (r.position is None, r.position or 0))
    return view


def _compliance_reason(policy: OrgPolicy, candidate: Candidate, data_class: str) -> str:
    """Why the matrix or one of the class's requirements removed the candidate."""
    if data_class not in policy.approved(candidate):
        approved = ", ".join(sorted(policy.approved(candidate), key=policy.rank)) or "no class"
        return f"not approved for {data_class} (approved: {approved})"
    requirement = policy.unmet(candidate, data_class)
    if requirement is None:
        return f"not approved for {data_class}"
    return f"fails the {data_class} requirement `{requirement.text}` ({requirement.found(candidate.deployment.facts)})"


def _row(candidate: Candidate, position: int | None) -> CandidateRow:
    d = candidate.deployment
    row = CandidateRow(d.name, candidate.model.name, d.provider_name, candidate.weight, position)
    facts = d.facts
    parts = [facts.region or "region unknown"]
    if facts.certifications:
        parts.append(", ".join(sorted(facts.certifications)))
    if facts.retention_days is not None:
        parts.append(f"retains {facts.retention_days} d")
    if facts.stale(timezone.localdate()):
        parts.append("stale: past its review date")
    row.terms = " · ".join(parts)
    return row


def explain(
    *,
    policy: OrgPolicy,
    key: KeyContext,
    body: dict[str, Any],
    headers: Mapping[str, str],
    state: RoutingState,
) -> Explanation:
    """`state`: the routing state to read health and time from (the serving gateway's)."""
    out = Explanation(policy_version=policy.version)
    capability = "embeddings" if "input" in body and "messages" not in body else "chat"
    ctx = RequestContext(request_id="dry-run", endpoint=capability, key=key, model_requested=str(body.get("model")))
    header_tags = [t.strip() for t in (headers.get("x-gatehouse-tags") or "").split(",") if t.strip()]
    ctx.tags = list(key.tags) + [t for t in header_tags if t not in key.tags]
    ctx.workflow = headers.get("x-gatehouse-workflow") or ""
    ctx.stream = bool(body.get("stream"))
    try:
        if capability == "chat":
            validate_chat(body)
        classify(ctx, policy, body, headers)
        out.data_class = ctx.data_class
        out.detected = list(ctx.detected)
        if headers.get(HEADER):
            out.sources.append(f"header: {headers[HEADER]}")
        out.sources.append(f"key default: {key.data_classification}")
        if ctx.detected:
            out.sources.append("detector: " + ", ".join(ctx.detected))
        elif not policy.detect_needed:
            out.sources.append("detector: off (no matrix or classification rule uses classes)")
        plan = route_resolve(ctx, policy, body, capability=capability)
    except GatewayError as exc:
        out.error = {"status": exc.status, "code": exc.code, "message": exc.message}
        _rules(out, policy, ctx, body)
        if exc.code == "no_compliant_model":
            _refused_routes(out, policy, ctx, body, capability=capability, state=state)
        return out
    _rules(out, policy, ctx, body)
    out.rule = ctx.rule
    out.route = plan.route.name
    if ctx.rule:
        out.how = f"rule “{ctx.rule}” matched"
    elif plan.route.name == ctx.model_requested:
        plain = "a plain model: its deployments, weighted"
        out.how = "the route named by model" if plan.route.kind != "model" else plain
    else:
        out.how = "no rule matched and no route or model has this name: the default route"
    routes = [plan.route] if plan.route.kind != "cascade" else [layer.route for layer, _ in plan.layers]
    for index, route in enumerate(routes):
        view = _route_view(
            policy, route, plan, data_class=ctx.data_class, capability=capability, stream=ctx.stream, state=state
        )
        if plan.route.kind == "cascade":
            layer = plan.layers[index][0]
            view.name = f"layer {index + 1}: {layer.name}"
            v = layer.validators
            checks = [name for name, on in (("json", v.json), ("refusal", v.refusal)) if on]
            checks += [f"regex /{v.regex.pattern}/"] if v.regex is not None else []
            checks += [f"length {v.min_length}..{v.max_length or '∞'}"] if v.min_length or v.max_length else []
            checks += [f"confidence >= {v.min_confidence:g}"] if v.min_confidence is not None else []
            view.validators = ", ".join(checks)
        out.routes.append(view)
    for on, target in plan.route.fallbacks.items():
        following = policy.destination(target)
        if following is not None and following.kind != "cascade":
            view = _route_view(
                policy,
                following,
                plan,
                data_class=ctx.data_class,
                capability=capability,
                stream=ctx.stream,
                state=state,
            )
            view.name = f"fallback on {on}: {target}"
            out.routes.append(view)
    return out


def _refused_routes(
    out: Explanation,
    policy: OrgPolicy,
    ctx: RequestContext,
    body: dict[str, Any],
    *,
    capability: str,
    state: RoutingState,
) -> None:
    """On a 403 `no_compliant_model`: every candidate of the route, each with what removed it."""
    from routing.pipeline.route import _facts

    route = policy.destination(ctx.route) if ctx.route else None
    if route is None:
        return
    out.route = route.name
    out.data_class = ctx.data_class
    plan = RoutePlan(policy=policy, route=route, capability=capability, facts=_facts(ctx, body))
    routes = [route] if route.kind != "cascade" else [layer.route for layer in route.layers]
    for index, inner in enumerate(routes):
        view = _route_view(
            policy, inner, plan, data_class=ctx.data_class, capability=capability, stream=ctx.stream, state=state
        )
        if route.kind == "cascade":
            view.name = f"layer {index + 1}: {route.layers[index].name}"
        out.routes.append(view)


def _rules(out: Explanation, policy: OrgPolicy, ctx: RequestContext, body: dict[str, Any]) -> None:
    from routing.engine.rules import RequestFacts

    facts = RequestFacts(
        body=body,
        requested=ctx.model_requested,
        tags=ctx.tags,
        workflow=ctx.workflow,
        key_prefix=ctx.key.prefix,
        key_name=ctx.key.name,
        team_id=ctx.key.team_id,
        data_class=ctx.data_class,
    )
    matched = False
    for rule in policy.rules:
        hit = not matched and rule.matches(facts)
        matched = matched or hit
        out.rules_checked.append((rule.name, hit, "; ".join(rule.describe()) + f" → {rule.route}"))
