"""Stage 6 — route: model name -> route -> ordered candidate deployments.

Two steps around admission. `route_resolve` (before admit, where the plain
model lookup always was) finds the route: the first matching content rule, else
the route named by `model`, else the model itself (its deployments, weighted),
else the organization's default route; it checks the key may use the name, keeps
only candidates that can serve the endpoint and are approved for the request's
data class, and sets `ctx.model` so admission can price the worst case.
`route_order` (after admit) reads the candidates' health in one call, drops
deployments whose breaker is open, lets one request probe a half-open one, and
orders the rest by the route's strategy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.engine import strategies
from routing.engine.rules import RequestFacts
from routing.engine.snapshot import Candidate, CompiledRoute, Layer, OrgPolicy
from routing.engine.state import Health, routing_state
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


def no_compliant(name: str, data_class: str, label: str) -> GatewayError:
    return GatewayError(
        f"No deployment of `{name}` is approved for data classified '{data_class}' ({label}). "
        "Ask an administrator to approve a model for this class in the compliance matrix.",
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
        raise _not_found(name)
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
        raise no_compliant(name, data_class, policy.class_labels.get(data_class, data_class))
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
            raise no_compliant(name, cls, plan.policy.class_labels.get(cls, cls))
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


def order_candidates(
    route: CompiledRoute,
    candidates: tuple[Candidate, ...],
    health: Mapping[int, Health],
    *,
    ticket: int,
    stream: bool,
    facts: RequestFacts,
    now: float,
) -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
    """(the ready candidates in strategy order, those cooling down, those half-open)."""
    ready: list[Candidate] = []
    cooling: list[Candidate] = []
    half_open: list[Candidate] = []
    for candidate in candidates:
        found = health.get(candidate.id)
        if found is not None and found.opened:
            (cooling if now < found.open_until else half_open).append(candidate)
        else:
            ready.append(candidate)
    strategy = route.strategy
    if strategy == "round_robin":
        ordered = strategies.round_robin(ready, ticket)
    elif strategy == "least_latency":
        ordered = strategies.least_latency(ready, health, stream=stream, exploration=route.exploration)
    elif strategy == "least_busy":
        ordered = strategies.least_busy(ready, health)
    elif strategy == "lowest_cost":
        ordered = strategies.lowest_cost(
            ready, prompt_tokens=facts.prompt_tokens, output_tokens=_output_tokens(facts.body)
        )
    else:
        ordered = strategies.weighted(ready)
    return ordered, cooling, half_open


async def candidates_order(
    ctx: RequestContext, plan: RoutePlan, route: CompiledRoute, candidates: tuple[Candidate, ...]
) -> list[Candidate]:
    state = routing_state()
    counter = f"{ctx.key.organization_id}:{route.name}" if route.strategy == "round_robin" else None
    health, ticket = await state.read([c.id for c in candidates], counter=counter)
    ordered, cooling, half_open = order_candidates(
        route, candidates, health, ticket=ticket, stream=ctx.stream, facts=plan.facts, now=time.time()
    )
    if cooling:
        ctx.routing.setdefault("cooling", []).extend(c.deployment.name for c in cooling)
    for candidate in half_open:
        # Half-open: one request at a time may probe a deployment whose cooldown ended.
        if await state.claim_probe(candidate.id, ttl=candidate.deployment.target.timeout):
            ordered.insert(0, candidate)
            ctx.routing.setdefault("probes", []).append(candidate.deployment.name)
            break
    return ordered
