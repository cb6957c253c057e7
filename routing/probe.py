"""Scheduled health probes: a dead deployment is known before users hit it.

Every gateway process runs `probe_round` on its own schedule (`GATEHOUSE_HEALTH_PROBE`,
`GATEHOUSE_HEALTH_PROBE_INTERVAL`); each deployment of the registry snapshot that has
not opted out (`Deployment.health_probe`) gets one cheap request — a one-token chat
("ping", `max_tokens: 1`), or a one-word embedding for embedding-only models — straight
through its adapter, outside any organization's budget or usage.

The outcome feeds the routing state like a request's outcome: a failure of the
deployment's own (5xx, timeout, refused connection, bad credentials, unknown model)
counts as one failed outcome with an ejection threshold of one, so an idle
deployment that fails its probe is ejected at once, while one whose live traffic
succeeds is not ejected by a single failed probe (the error rate decides, as for
requests); a success returns an ejected deployment whose time is up to the pool, so
no user request has to be the one that finds out. A 429 or a 400 says nothing
about health and is recorded as inconclusive.

With several processes on a shared (Redis) state, a claim per deployment and round
lets one process probe it. The last result of each deployment is written once per
round (`DeploymentProbe`) for the health page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

from providers.facade import DeploymentInfo, ModelInfo, UpstreamError, get_adapter
from routing.engine.state import DEFAULT_BREAKER

if TYPE_CHECKING:
    from routing.gateway import Gateway

logger = logging.getLogger(__name__)

PING = [{"role": "user", "content": "ping"}]
CONCURRENCY = 8
INCONCLUSIVE = frozenset({400, 429})


@dataclass(frozen=True, slots=True)
class ProbeResult:
    deployment_id: int
    ok: bool | None  # None: inconclusive
    status: int
    latency_ms: float
    error: str
    at: datetime


async def probe_one(http, deployment: DeploymentInfo, model: ModelInfo, *, timeout: float) -> ProbeResult:
    """One cheap request to the deployment, through its adapter."""
    target = replace(deployment.target, timeout=min(timeout, deployment.target.timeout))
    adapter = get_adapter(deployment.provider_kind)
    started = time.monotonic()
    ok: bool | None = True
    status, error = 200, ""
    try:
        if "chat" in model.capabilities:
            await adapter.chat(http, target, {"model": target.upstream_model, "messages": PING, "max_tokens": 1})
        else:
            await adapter.embeddings(http, target, {"model": target.upstream_model, "input": "ping"})
    except UpstreamError as exc:
        status = exc.upstream_status or exc.status
        ok = None if status in INCONCLUSIVE else False
        error = f"{exc.code or exc.type}: {exc.message}"[:300]
    except Exception as exc:  # noqa: BLE001 - any other failure is the deployment's
        status, ok, error = 0, False, f"{type(exc).__name__}: {exc}"[:300]
    latency = (time.monotonic() - started) * 1000.0
    return ProbeResult(deployment.id, ok, status, latency, error, timezone.now())


def probe_targets(gateway: Gateway) -> list[tuple[DeploymentInfo, ModelInfo]]:
    catalog = gateway.snapshots.catalog
    if catalog is None:
        return []
    return [(d, model) for model in catalog.models.values() for d in model.deployments if d.health_probe]


async def probe_round(gateway: Gateway, *, timeout: float, claim_ttl: float = 0.0) -> list[ProbeResult]:
    """Probe every deployment (that this process claims), feed the routing state, and
    write the results. Returns them (tests read them)."""
    state = gateway.state
    routing = gateway.snapshots.routing
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(deployment: DeploymentInfo, model: ModelInfo) -> ProbeResult | None:
        # The claim is kept under the negated id, apart from the half-open probe claims.
        if claim_ttl and not await state.claim_probe(-deployment.id, claim_ttl):
            return None
        async with limit:
            result = await probe_one(gateway.http, deployment, model, timeout=timeout)
        if result.ok is not None:
            breaker = routing.breakers.get(deployment.id, DEFAULT_BREAKER) if routing else DEFAULT_BREAKER
            state.begin(deployment.id)
            state.end(deployment.id, ok=result.ok, breaker=replace(breaker, threshold=1))
        return result

    found = await asyncio.gather(*(one(d, m) for d, m in probe_targets(gateway)))
    await state.written()  # an ejection is in the shared state when the round ends, not 5 ms later
    results = [r for r in found if r is not None]
    if results:
        await gateway.writer(probe_results_save, results)
    return results


def probe_results_save(results: list[ProbeResult]) -> None:
    """The last result per deployment, and how many probes in a row failed."""
    from routing.models import DeploymentProbe

    ids = [r.deployment_id for r in results]
    previous = {p.deployment_id: p for p in DeploymentProbe.objects.filter(deployment_id__in=ids)}
    new, changed = [], []
    for r in results:
        row = previous.get(r.deployment_id)
        failures = ((row.failures if row else 0) + 1) if r.ok is False else 0
        if row is None:
            new.append(DeploymentProbe(deployment_id=r.deployment_id, failures=failures, checked_at=r.at))
            row = new[-1]
        else:
            changed.append(row)
        row.ok, row.status, row.latency_ms, row.error = r.ok, r.status, r.latency_ms, r.error
        row.failures, row.checked_at = failures, r.at
    DeploymentProbe.objects.bulk_create(new)
    if changed:
        DeploymentProbe.objects.bulk_update(changed, ["ok", "status", "latency_ms", "error", "failures", "checked_at"])
