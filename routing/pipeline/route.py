"""Stage 6 — route: model name -> route -> ordered candidate deployments.

Two steps around admission. `route_resolve` (before admit, where the plain
model lookup always was) finds the route: the first matching content rule, else
the route named by `model`, else the model itself (its deployments, weighted),
else the organization's default route; it checks the key may use the name, keeps
only candidates that can serve the endpoint and are approved for the request's
data class, and sets `ctx.model` so admission can price the worst case.
`route_order` (after admit) reads the candidates' health in one call, leaves
out ejected deployments (at most the route's `max_ejection_percent`; all of
them in panic mode), lets one request probe a deployment whose ejection is
over, and orders the rest by the route's strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.conf import routing_conf
from routing.engine import strategies
from routing.engine.rules import RequestFacts
from routing.engine.snapshot import Candidate, CompiledRoute, Layer, OrgPolicy
from routing.engine.state import Health
from routing.errors import GatewayError
from routing.pipeline.context import RequestContext


@dataclass(slots=True)
class RoutePlan:
    policy: OrgPolicy
    route: CompiledRoute
    capability: str
    facts: RequestFacts
    candidates: tuple[Candidate, ...] = ()  # eligible for this request, not yet ordered
    layers: list[tuple[Layer, tuple[Candidate, ...]]] = field(default_factory=list)  # cascade
    ordered: list[Candidate] = field(default_factory=list)

    @property
    def deployments(self) -> list[Any]:
        return [c.deployment for c in self.ordered]


def _not_found(name: str) -> GatewayError:
    return GatewayError(
        f"The model `{name}` does not exist or you do not have access to it.",
        status=404,
        type="invalid_request_error",
        code="model_not_found",
        param="model",
    )


def _retired(model) -> GatewayError:
    """A retired model (decided from the registry snapshot): say so and name the replacement."""
    when = f" on {model.retired_on.isoformat()}" if model.retired_on else ""
    instead = f" Use `{model.replacement}` instead." if model.replacement else ""
    return GatewayError(
        f"The model `{model.name}` was retired{when} and no longer accepts requests.{instead}",
        status=404,
        type="invalid_request_error",
        code="model_retired",
        param="model",
    )


def no_compliant(name: str, data_class: str, label: str, unmet: tuple[str, ...] = ()) -> GatewayError:
    if unmet:
        if len(unmet) == 1:
            which = f"No deployment met the requirement {unmet[0]}."
        else:
            which = f"Each deployment failed one of the requirements {', '.join(unmet)}."
        advice = (
            f"{which} Ask an administrator to record a deployment's compliance facts that meet the class's "
            "requirements, or to change them."
        )
    else:
        advice = "Ask an administrator to approve a model for this class in the compliance matrix."
    return GatewayError(
        f"No deployment of `{name}` is approved for data classified '{data_class}' ({label}). {advice}",
        status=403,
        type="permission_error",
        code="no_compliant_model",
        param="model",
    )


def eligible(
    policy: OrgPolicy, route: CompiledRoute, *, data_class: str, capability: str
) -> tuple[tuple[Candidate, ...], str]:
    """Candidates that can serve `capability` and are approved for `data_class`, and
    when there are none, why: "", "capability", "compliance" or "empty"."""
    if not route.candidates:
        return (), "empty"
    capable = [c for c in route.candidates if capability in c.model.capabilities]
    if not capable:
        return (), "capability"
    compliant = route.compliant(data_class)
    if len(compliant) == len(route.candidates):
        return tuple(capable), ""
    allowed = {c.id for c in compliant}
    found = tuple(c for c in capable if c.id in allowed)
    return found, "" if found else "compliance"


def unmet_requirements(
    policy: OrgPolicy, routes: list[CompiledRoute], *, data_class: str, capability: str
) -> tuple[str, ...]:
    """The requirements that removed the candidates the matrix approves, when no candidate is left:
    what the 403 names. Empty when the matrix itself (not a requirement) removed them all."""
    found: dict[str, None] = {}
    for route in routes:
        for candidate in route.candidates:
            if capability in candidate.model.capabilities and data_class in policy.approved(candidate):
                requirement = policy.unmet(candidate, data_class)
                if requirement is not None:
                    found.setdefault(f"`{requirement.text}`", None)
    return tuple(found)


def _facts(ctx: RequestContext, body: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(
        body=body,
        requested=ctx.model_requested,
        tags=ctx.tags,
        workflow=ctx.workflow,
        key_prefix=ctx.key.prefix,
        key_name=ctx.key.name,
        team_id=ctx.key.team_id,
        data_class=ctx.data_class,
    )


def route_resolve(ctx: RequestContext, policy: OrgPolicy, body: Mapping[str, Any], *, capability: str) -> RoutePlan:
    name = ctx.model_requested
    facts = _facts(ctx, body)
    route = None
    for rule in policy.rules:
        if rule.matches(facts):
            route = policy.destination(rule.route)
            if route is not None:
                ctx.rule = rule.name
                break
    if route is None:
        route = policy.destination(name)
        if route is None and policy.default_route:
            route = policy.destination(policy.default_route)
    if route is None:
        retired = policy.catalog.retired.get(name)
        raise _not_found(name) if retired is None else _retired(retired)
    if not ctx.key.allows(name):
        raise GatewayError(
            f"This API key is not allowed to use the model `{name}`.",
            status=403,
            type="permission_error",
            code="model_not_allowed",
            param="model",
        )
    ctx.route = route.name
    ctx.policy_version = policy.version
    plan = RoutePlan(policy=policy, route=route, capability=capability, facts=facts)
    data_class = ctx.data_class
    if route.kind == "cascade":
        _resolve_cascade(ctx, plan, name)
        return plan
    plan.candidates, reason = eligible(policy, route, data_class=data_class, capability=capability)
    if route.kind == "model":
        ctx.model = policy.catalog.model(route.name)
    elif plan.candidates:
        ctx.model = plan.candidates[0].model
    if reason == "capability":
        raise GatewayError(
            f"The model `{name}` does not support {capability}.",
            status=400,
            type="invalid_request_error",
            code="unsupported_model_capability",
            param="model",
        )
    if reason == "compliance":
        unmet = unmet_requirements(policy, [route], data_class=data_class, capability=capability)
        raise no_compliant(name, data_class, policy.class_labels.get(data_class, data_class), unmet)
    if reason == "empty":
        raise GatewayError(
            f"No deployment serves the model `{name}` right now.",
            status=503,
            type="service_unavailable",
            code="no_deployment",
            param="model",
        )
    return plan


def _resolve_cascade(ctx: RequestContext, plan: RoutePlan, name: str) -> None:
    if plan.capability != "chat":
        raise GatewayError(
            f"`{name}` is a cascade route; cascades serve chat completions only.",
            status=400,
            code="unsupported_model_capability",
            param="model",
        )
    reasons = set()
    for layer in plan.route.layers:
        found, reason = eligible(plan.policy, layer.route, data_class=ctx.data_class, capability="chat")
        if found:
            plan.layers.append((layer, found))
        reasons.add(reason)
    if not plan.layers:
        if "compliance" in reasons:
            cls = ctx.data_class
            routes = [layer.route for layer in plan.route.layers]
            unmet = unmet_requirements(plan.policy, routes, data_class=cls, capability="chat")
            raise no_compliant(name, cls, plan.policy.class_labels.get(cls, cls), unmet)
        raise GatewayError(
            f"No layer of the cascade `{name}` has a deployment right now.",
            status=503,
            type="service_unavailable",
            code="no_deployment",
            param="model",
        )
    # Admission prices the worst case: the most expensive layer.
    ctx.model = max((c.model for _, found in plan.layers for c in found), key=lambda m: m.price.output)


async def route_order(ctx: RequestContext, plan: RoutePlan) -> RoutePlan:
    """Order the primary route's candidates (cascade layers are ordered as they are reached)."""
    if plan.route.kind != "cascade":
        plan.ordered = await candidates_order(ctx, plan, plan.route, plan.candidates)
    return plan


def _output_tokens(body: Mapping[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return value if isinstance(value, int) else None


def ejection_allowance(total: int, percent: int) -> int:
    """How many of a route's `total` deployments may be ejected at once: `percent` of
    them rounded down, but at least one when ejection is on at all (as Envoy does)."""
    if percent <= 0 or total <= 0:
        return 0
    return max(1, total * percent // 100)


def ejection_percent(route: CompiledRoute) -> int:
    if route.max_ejection_percent is not None:
        return route.max_ejection_percent
    return routing_conf().ejection_max_percent


@dataclass(slots=True)
class Ordering:
    ordered: list[Candidate]  # to be tried, in this order
    ejected: list[Candidate] = field(default_factory=list)  # left out: ejected
    half_open: list[Candidate] = field(default_factory=list)  # left out: ejection over, awaiting a probe
    readmitted: list[Candidate] = field(default_factory=list)  # ejected, kept by max_ejection_percent
    panic: bool = False  # every candidate was ejected: routed to them anyway


def _strategy(
    route: CompiledRoute,
    ready: list[Candidate],
    health: Mapping[int, Health],
    *,
    ticket: int,
    stream: bool,
    facts: RequestFacts,
) -> list[Candidate]:
    strategy = route.strategy
    if strategy == "round_robin":
        return strategies.round_robin(ready, ticket)
    if strategy == "least_latency":
        return strategies.least_latency(ready, health, stream=stream, exploration=route.exploration)
    if strategy == "least_busy":
        return strategies.least_busy(ready, health)
    if strategy == "lowest_cost":
        return strategies.lowest_cost(
            ready, prompt_tokens=facts.prompt_tokens, output_tokens=_output_tokens(facts.body)
        )
    return strategies.weighted(ready)


def order_candidates(
    route: CompiledRoute,
    candidates: tuple[Candidate, ...],
    health: Mapping[int, Health],
    *,
    ticket: int,
    stream: bool,
    facts: RequestFacts,
    now: float,
    max_ejection_percent: int | None = None,
) -> Ordering:
    """The ready candidates in strategy order, and which were left out and why.

    Ejected deployments are left out, but never more than the route's
    `max_ejection_percent` of its candidates (the ones ejected most often stay
    out, the rest are readmitted); when none is left, all are used anyway
    (panic mode): a partly failing deployment beats a certain 503.
    """
    percent = ejection_percent(route) if max_ejection_percent is None else max_ejection_percent
    ready: list[Candidate] = []
    out: list[Candidate] = []
    for candidate in candidates:
        found = health.get(candidate.id)
        (out if found is not None and found.opened else ready).append(candidate)
    readmitted: list[Candidate] = []
    allowance = ejection_allowance(len(candidates), percent)
    if len(out) > allowance:
        out.sort(key=lambda c: (health[c.id].ejections, health[c.id].open_until), reverse=True)
        out, readmitted = out[:allowance], out[allowance:]
        ready.extend(readmitted)
    ordered = _strategy(route, ready, health, ticket=ticket, stream=stream, facts=facts) if ready else []
    if not ordered and out:
        ordered = _strategy(route, out, health, ticket=ticket, stream=stream, facts=facts)
        return Ordering(ordered, ejected=out, readmitted=readmitted, panic=True)
    ejected = [c for c in out if now < health[c.id].open_until]
    half_open = [c for c in out if now >= health[c.id].open_until]
    return Ordering(ordered, ejected=ejected, half_open=half_open, readmitted=readmitted)


async def candidates_order(
    ctx: RequestContext, plan: RoutePlan, route: CompiledRoute, candidates: tuple[Candidate, ...]
) -> list[Candidate]:
    state = ctx.gateway.state
    counter = f"{ctx.key.organization_id}:{route.name}" if route.strategy == "round_robin" else None
    health, ticket = await state.read([c.id for c in candidates], counter=counter)
    found = order_candidates(
        route, candidates, health, ticket=ticket, stream=ctx.stream, facts=plan.facts, now=state.now()
    )
    ordered = found.ordered
    if found.ejected:
        ctx.routing.setdefault("ejected", []).extend(c.deployment.name for c in found.ejected)
    if found.readmitted:
        ctx.routing.setdefault("readmitted", []).extend(c.deployment.name for c in found.readmitted)
    if found.panic:
        ctx.routing["panic"] = True
        ctx.routing.setdefault("panic_routes", []).append(route.name)
        return ordered
    for candidate in found.half_open:
        # Ejection over: one request at a time may probe the deployment.
        if await state.claim_probe(candidate.id, ttl=candidate.deployment.target.timeout):
            ordered.insert(0, candidate)
            ctx.routing.setdefault("probes", []).append(candidate.deployment.name)
            break
    return ordered
