"""Synthetic usage for demos, the FOCUS check and the page benchmark.

Builds an organization with teams, users and keys through the console services, then
writes usage records through a `UsageSink` (the gateway's own write path) spread
over a span of days with a weekly rhythm, and rolls them up.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from budgets.models import Outcome
from budgets.rollups import usage_rollup_rebuild
from budgets.usage import UsageEvent, UsageSink

# name: (provider, tier, input $/1M, output $/1M, cached $/1M, typical latency ms)
MODELS = {
    "gpt-4o": ("openai", "frontier", "2.5", "10", "1.25", 1800),
    "gpt-4o-mini": ("openai", "mid", "0.15", "0.6", "0.075", 900),
    "o3": ("openai", "frontier", "2", "8", "0.5", 6000),
    "claude-3-5-sonnet": ("anthropic", "frontier", "3", "15", "0.3", 2000),
    "claude-3-5-haiku": ("anthropic", "mid", "0.8", "4", "0.08", 800),
    "gemini-1.5-pro": ("gemini", "frontier", "1.25", "5", "0.3125", 1500),
    "gemini-1.5-flash": ("gemini", "mid", "0.075", "0.3", "0.01875", 500),
    "llama-3.1-70b": ("groq", "open-weight", "0.59", "0.79", "0.59", 600),
    "llama-3.1-8b": ("groq", "open-weight", "0.05", "0.08", "0.05", 250),
    "mistral-small": ("mistral", "open-weight", "0.2", "0.6", "0.2", 400),
    "phi-3-mini": ("edge", "edge", "0.01", "0.02", "0.01", 150),
    "text-embedding-3-small": ("openai", "mid", "0.02", "0", "0.02", 80),
}
WORKFLOWS = ("triage", "summarize", "code-review", "search", "support-chat", "extraction", "translation", "qa")
TAGS = ("prod", "beta", "batch", "internal", "customer", "eval")
ROUTES = ("support", "coding", "analytics", "default")
DATA_CLASSES = ("public", "internal", "confidential", "pii")
OUTCOMES = ("ticket_resolved", "summary_accepted", "pr_merged", "answer_helpful")
MILLION = Decimal(1_000_000)
TEN = Decimal("1e-10")


@dataclass(frozen=True)
class SeedResult:
    organization_id: int
    records: int
    outcomes: int
    rollup_rows: int


def seed_usage(
    *,
    slug: str = "finops-bench",
    records: int = 1_000_000,
    days: int = 365,
    teams: int = 20,
    users: int = 200,
    keys_per_user: int = 2,
    now: datetime | None = None,
    seed: int = 7,
    rollup: bool = True,
) -> SeedResult:
    from console import services
    from console.models import ApiKey, Organization, Team

    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        owner = services.user_create(username=f"{slug}-owner", email=f"owner@{slug}.test")
        organization = services.organization_create(name=slug.replace("-", " ").title(), slug=slug, owner=owner)
        team_objs = [
            services.team_create(organization=organization, name=f"Team {i:02d}", actor=owner) for i in range(teams)
        ]
        for i in range(users):
            user = services.user_create(username=f"{slug}-u{i:04d}", email=f"u{i}@{slug}.test")
            services.membership_set(organization=organization, user=user, role="member", actor=owner)
            team = team_objs[i % len(team_objs)]
            for k in range(keys_per_user):
                services.api_key_create(
                    organization=organization,
                    name=f"{user.username}-k{k}",
                    team=team,
                    user=user,
                    app_name=f"app-{(i * keys_per_user + k) % 25:02d}",
                    actor=owner,
                )
    keys = list(ApiKey.objects.filter(organization=organization).values_list("id", "team_id", "user_id"))
    if not keys:
        team = Team.objects.filter(organization=organization).first()
        raise ValueError(f"Organization {slug!r} has no keys to seed usage on (team {team}).")
    buffer = UsageSink()
    model_names = list(MODELS)
    model_weights = [30, 25, 3, 10, 8, 6, 8, 5, 4, 3, 2, 6]
    start = now - timedelta(days=days)
    # Weekly rhythm and growth: weekdays busier than weekends; the year grows to ~2x.
    weights = []
    for d in range(days):
        day = start + timedelta(days=d)
        weights.append((0.45 if day.weekday() >= 5 else 1.0) * (1 + d / max(days, 1)))
    total_weight = sum(weights)
    written = 0
    request_ids: list[tuple[str, str, int]] = []
    for d, weight in enumerate(weights):
        count = round(records * weight / total_weight) if d < days - 1 else records - written
        day = start + timedelta(days=d)
        for _ in range(max(0, count)):
            key_id, team_id, user_id = keys[rng.randrange(len(keys))]
            model = rng.choices(model_names, model_weights)[0]
            event = _event(rng, day, model, organization.id, key_id, team_id, user_id)
            buffer.add(event)
            if rng.random() < 0.02:
                request_ids.append((event.request_id, event.workflow, key_id))
        written += max(0, count)
        if len(buffer) >= 5000:
            buffer.flush()
    buffer.flush()
    outcomes = [
        Outcome(
            organization_id=organization.id,
            request_id=request_id,
            workflow=workflow,
            name=OUTCOMES[WORKFLOWS.index(workflow) % len(OUTCOMES)],
            value=Decimal(rng.choice(("0.50", "2.00", "5.00", "12.50"))),
            key_id=key_id,
            created_at=now - timedelta(days=rng.randrange(days)),
        )
        for request_id, workflow, key_id in request_ids
    ]
    Outcome.objects.bulk_create(outcomes, batch_size=2000)
    # Records land anywhere in their day (hours are drawn), so rebuild whole days.
    first_day = start.replace(hour=0, minute=0, second=0)
    rows = usage_rollup_rebuild(since=first_day, until=now + timedelta(days=1))["rows"] if rollup else 0
    return SeedResult(organization_id=organization.id, records=written, outcomes=len(outcomes), rollup_rows=rows)


def _event(rng: random.Random, day: datetime, model: str, org: int, key: int, team: int, user: int) -> UsageEvent:
    provider, tier, pin, pout, pcached, typical = MODELS[model]
    # Office hours are busier.
    hour = min(23, max(0, int(rng.gauss(13, 4))))
    at = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
    embeddings = model.startswith("text-embedding")
    tin = int(rng.lognormvariate(6.5, 1.0)) + 10
    tout = 0 if embeddings else int(rng.lognormvariate(5.0, 0.9)) + 1
    cached = int(tin * rng.choice((0, 0, 0, 0.5, 0.8))) if not embeddings else 0
    status = rng.choices((200, 400, 429, 500, 502, 504), (960, 8, 15, 5, 7, 5))[0]
    if status >= 400:
        tout = 0
    price_in, price_out, price_cached = Decimal(pin), Decimal(pout), Decimal(pcached)
    input_cost = (((tin - cached) * price_in + cached * price_cached) / MILLION).quantize(TEN)
    output_cost = (tout * price_out / MILLION).quantize(TEN)
    latency = max(20.0, rng.lognormvariate(0, 0.5) * typical * (0.3 if status >= 400 else 1.0))
    ttft = None if embeddings or status >= 400 else max(10.0, latency * rng.uniform(0.08, 0.3))
    workflow = WORKFLOWS[rng.randrange(len(WORKFLOWS))]
    layer = rng.choices((0, 1, 2), (78, 17, 5))[0]
    attempts = 1 + (rng.random() < 0.03)
    return UsageEvent(
        request_id=f"req_{uuid.UUID(int=rng.getrandbits(128)).hex}",
        created_at=at,
        organization_id=org,
        endpoint="embeddings" if embeddings else "chat",
        status_code=status,
        team_id=team,
        user_id=user,
        key_id=key,
        stream=rng.random() < 0.6,
        model_requested=model if layer == 0 else "auto",
        model_used=model,
        deployment_name=f"{provider}-{model}",
        provider_name=provider,
        attempts=attempts,
        input_tokens=tin,
        output_tokens=tout,
        cached_tokens=cached,
        input_price=price_in,
        output_price=price_out,
        cached_input_price=price_cached,
        input_cost=input_cost,
        output_cost=output_cost,
        cost=input_cost + output_cost,
        ttft_ms=ttft,
        latency_ms=latency,
        tags=rng.sample(TAGS, rng.choice((0, 1, 1, 2))),
        workflow=workflow,
        metadata={
            "tier": tier,
            "route": ROUTES[WORKFLOWS.index(workflow) % len(ROUTES)],
            "cascade_layer": layer,
            "data_class": rng.choice(DATA_CLASSES),
            "reasoning_tokens": int(tout * 0.4) if model == "o3" else 0,
        },
    )
